"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with OpenAI's statuses,
so the official clients raise their usual exceptions (AuthenticationError, PermissionDeniedError,
RateLimitError with Retry-After, BadRequestError with `param`). Messages are short and fixed: never an
exception's text."""

from __future__ import annotations

import math
from collections.abc import Mapping

from aiohttp import web

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


def api_error(
    status: int,
    message: str,
    *,
    type_: str = INVALID_REQUEST,
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def bad_request(message: str, param: str | None = None, code: str | None = "invalid_value") -> web.Response:
    return api_error(400, message, param=param, code=code)


def unauthorized(message: str, code: str | None = "invalid_api_key") -> web.Response:
    return api_error(401, message, code=code)


def forbidden(message: str, *, param: str | None = None, code: str | None = None) -> web.Response:
    return api_error(403, message, param=param, code=code)


def too_many(message: str, retry_after: float, code: str) -> web.Response:
    """429 with Retry-After in whole seconds (at least 1): OpenAI's clients honour it."""
    seconds = max(1, math.ceil(retry_after))
    return api_error(429, message, type_="requests", code=code, headers={"Retry-After": str(seconds)})


def server_error(status: int, message: str, code: str | None = None) -> web.Response:
    return api_error(status, message, type_=SERVER_ERROR, code=code)


class ApiError(Exception):
    """Raised anywhere under a route: the API's error middleware sends `response`."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(f"API error {response.status}")
        self.response = response
