"""The OpenAI-compatible HTTP API, mounted on the bot's web server (and alone by `python -m bot api`).

`POST /v1/images/generations`, `POST /v1/images/edits`, `GET /v1/models[/{model}]` in OpenAI's
request, response and error formats, and `GET /v1/images/files/{id}` serving `url` results by an
unguessable, expiring id. A key (`Authorization: Bearer …`) acts as its user: same level, same daily
limit as the chat, same queue and workers. `/openapi.json` describes it all (bot/web/openapi_doc.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from bot.catalog import MODELS, ModelId
from bot.clock import Clock
from bot.faults import is_outage
from bot.services.api_files import ApiFiles, input_ref
from bot.services.api_generation import ApiGeneration, CallOutcome, CallStatus, ImageCall
from bot.services.api_keys import ApiKeyService
from bot.services.user_view import UserView
from bot.services.users import UserService
from bot.web.openai_errors import (
    ApiError,
    api_error,
    bad_request,
    forbidden,
    server_error,
    too_many,
    unauthorized,
)
from bot.web.openai_requests import ImagesParams, parse_edit, parse_generation
from bot.web.openapi_doc import openapi_document
from models import JobKind

log = logging.getLogger(__name__)

OWNER = "tiered-image-bot"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class OpenAIApi:
    keys: ApiKeyService
    users: UserService
    generation: ApiGeneration
    files: ApiFiles
    clock: Clock
    public_url: str | None
    input_keep: timedelta  # how long an edit's uploaded photo is kept for its job


API_KEY = web.AppKey("openai_api", OpenAIApi)


def add_openai_api(app: web.Application, api: OpenAIApi) -> None:
    """`/openapi.json` on `app`, the rest under `/v1` with OpenAI-shaped errors for every failure."""
    app.router.add_get("/openapi.json", _openapi)
    v1 = web.Application(middlewares=[_errors])
    v1[API_KEY] = api
    v1.router.add_get("/models", _models)
    v1.router.add_get("/models/{model}", _model)
    v1.router.add_post("/images/generations", _generations)
    v1.router.add_post("/images/edits", _edits)
    v1.router.add_get("/images/files/{file_id}", _file)
    app.add_subapp("/v1", v1)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response
    except web.HTTPException as exc:  # aiohttp's own: unknown route, wrong method, body too large
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None  # a 405 says what is
        return api_error(exc.status, exc.reason, code=None, headers=allow)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if is_outage(exc):
            log.warning("API %s %s: database or Redis unreachable (%s)", request.method, request.path,
                        type(exc).__name__)  # fmt: skip
            return api_error(503, "The service is busy; try again shortly.", type_="server_error",
                             headers={"Retry-After": "5"})  # fmt: skip
        log.exception("API %s %s failed", request.method, request.path)
        return server_error(500, "The server had an error while processing your request.")


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


# --- auth ------------------------------------------------------------------------------------------


async def _caller(request: web.Request) -> UserView:
    api = request.app[API_KEY]
    if not api.keys.enabled:
        raise ApiError(unauthorized("API keys are not enabled on this server.", "api_keys_disabled"))
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(unauthorized("You didn't provide an API key: send it as 'Authorization: Bearer <key>'.", None))
    user_id = await api.keys.authenticate(token)
    user = await api.users.get(user_id) if user_id is not None else None
    if user is None:
        raise ApiError(unauthorized("Incorrect API key provided. Create one with /apikey in the bot."))
    if user.is_banned:
        raise ApiError(forbidden("This account is banned.", code="account_banned"))
    return user


# --- models ----------------------------------------------------------------------------------------


def _model_object(model: ModelId) -> dict[str, Any]:
    return {"id": model.value, "object": "model", "created": 0, "owned_by": OWNER}


def _allowed(user: UserView) -> list[ModelId]:
    return [spec.id for spec in MODELS.values() if user.level.allows(spec.min_level)]


async def _models(request: web.Request) -> web.Response:
    user = await _caller(request)
    return web.json_response({"object": "list", "data": [_model_object(m) for m in _allowed(user)]})


async def _model(request: web.Request) -> web.Response:
    user = await _caller(request)
    name = request.match_info["model"]
    for model in _allowed(user):
        if model.value == name:
            return web.json_response(_model_object(model))
    return api_error(404, f"The model '{name[:64]}' does not exist or you do not have access to it.",
                     param="model", code="model_not_found")  # fmt: skip


# --- images ----------------------------------------------------------------------------------------


async def _generations(request: web.Request) -> web.Response:
    user = await _caller(request)
    try:
        body = await request.json(loads=json.loads)
    except (ValueError, RecursionError):  # RecursionError: nested too deep for the parser
        raise ApiError(bad_request("The request body is not valid JSON.", None, None)) from None
    params = parse_generation(body)
    return await _run(request, user, params, JobKind.GENERATE, None)


async def _edits(request: web.Request) -> web.Response:
    user = await _caller(request)
    params, upload = await parse_edit(request)
    api = request.app[API_KEY]
    file_id = await api.files.store_input(upload.data, upload.mime_type, api.input_keep)
    return await _run(request, user, params, JobKind.EDIT, input_ref(file_id))


async def _run(
    request: web.Request, user: UserView, params: ImagesParams, kind: JobKind, input_file_id: str | None
) -> web.Response:
    api = request.app[API_KEY]
    model = params.model or user.chosen_model
    call = ImageCall(params.prompt, model, params.count, params.width, params.height, kind, input_file_id)
    outcome = await api.generation.run(user, call)
    if outcome.status is not CallStatus.DONE:
        return _failure(outcome, model)
    data: list[dict[str, Any]] = []
    base = (api.public_url or f"{request.scheme}://{request.host}").rstrip("/")
    for image in outcome.images:
        if params.response_format == "b64_json":
            data.append({"b64_json": base64.b64encode(image.data).decode(), "revised_prompt": None})
        else:
            data.append({"url": f"{base}/v1/images/files/{image.id}", "revised_prompt": None})
    return web.json_response({"created": int(api.clock.now().timestamp()), "data": data})


def _failure(outcome: CallOutcome, model: ModelId) -> web.Response:
    status = outcome.status
    if status is CallStatus.FORBIDDEN:
        level = outcome.required_level.value if outcome.required_level else "a higher"
        return forbidden(f"The model '{model.value}' needs the {level} level.", param="model",
                         code="model_not_allowed")  # fmt: skip
    if status is CallStatus.LIMIT_REACHED:
        return too_many("Daily image limit reached (shared with the bot). It resets at midnight.",
                        outcome.retry_after, "daily_limit_reached")  # fmt: skip
    if status is CallStatus.TOO_MANY:
        return too_many("Too many of your requests are running or waiting; try again shortly.",
                        outcome.retry_after, "too_many_requests")  # fmt: skip
    if status is CallStatus.INVALID:
        return bad_request(f"Invalid request: {outcome.detail}.", None)
    if status is CallStatus.REFUSED:
        return bad_request("The image model's content policy refused this request. Nothing was charged.",
                           "prompt", "content_policy_violation")  # fmt: skip
    if status is CallStatus.FAILED:
        return server_error(502, "Every image service failed. Nothing was charged; try again later.",
                            "upstream_failed")  # fmt: skip
    if status is CallStatus.TIMEOUT:
        return server_error(504, "No image in time. If it was still waiting, nothing was charged.", "timeout")
    return server_error(503, "The request could not be completed. Nothing was charged; try again.", "unavailable")


async def _file(request: web.Request) -> web.Response:
    """A result by its id: the id is the credential (256 random bits), so no key is asked for."""
    api = request.app[API_KEY]
    file_id = request.match_info["file_id"]
    image = await api.files.get(file_id) if len(file_id) <= 64 else None
    if image is None:
        return api_error(404, "No such file, or it has expired.", code="file_not_found")
    return web.Response(
        body=image.data,
        content_type=image.mime_type,
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
