"""The HF router's OpenAI-compatible chat endpoint, as a part of a fake server (FakeReplicate mounts it,
since the real router serves both `/replicate/...` and `/v1/chat/completions`).

- `POST /v1/chat/completions` with `{"model", "messages", ...}` → `{"choices": [{"message": ...}]}`.
- Every request's JSON body and Authorization header is kept in `.requests`.
- `reply(model, text)` sets what a model answers (default: "Fake answer from <model>.").
- `fail(status, model=..., times=...)` makes a model (or every model) answer `status` with the
  router's own error bodies (401 bad key, 403 gated, 404 no such model, 429 credits/rate, 503 loading);
  `delay(seconds)` holds answers back to trip timeouts.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

ROUTER_ERRORS: dict[int, str] = {
    401: "Invalid credentials in Authorization header",
    403: "Access to model {model} is restricted and you are not in the authorized list. "
    "Visit the model page to ask for access.",
    404: "The requested model '{model}' does not exist",
    429: "You have exceeded your monthly included credits for Inference Providers.",
    503: "Model {model} is currently loading",
}


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    body: dict[str, Any]
    authorization: str | None

    def texts(self) -> list[str]:
        """Every text the request carries, plain or as a content part."""
        out: list[str] = []
        for message in self.messages:
            content = message.get("content")
            if isinstance(content, str):
                out.append(content)
            elif isinstance(content, list):
                out.extend(str(part.get("text", "")) for part in content if part.get("type") == "text")
        return out

    def images(self) -> list[bytes]:
        """The bytes of every `image_url` part sent as a base64 data URI."""
        out: list[bytes] = []
        for message in self.messages:
            content = message.get("content")
            if not isinstance(content, list):
                continue
            for part in content:
                if part.get("type") != "image_url":
                    continue
                url = str((part.get("image_url") or {}).get("url", ""))
                head, _, data = url.partition(",")
                if head.startswith("data:") and head.endswith(";base64"):
                    out.append(base64.b64decode(data))
        return out


class FakeRouterChat:
    def __init__(self) -> None:
        self.requests: list[ChatRequest] = []
        self.replies: dict[str, str] = {}
        self._failures: dict[str | None, tuple[int, Any]] = {}
        self._failures_left: dict[str | None, int] = {}  # absent: fail until clear()
        self._delay = 0.0

    def reply(self, model: str, text: str) -> None:
        self.replies[model] = text

    def fail(self, status: int, *, model: str | None = None, body: Any = None, times: int | None = None) -> None:
        """Answer `status` for `model` (None: every model) `times` times, or until `clear()`."""
        self._failures[model] = (status, body)
        self._failures_left.pop(model, None)
        if times is not None:
            self._failures_left[model] = times

    def delay(self, seconds: float) -> None:
        self._delay = seconds

    def clear(self) -> None:
        self._failures.clear()
        self._failures_left.clear()
        self._delay = 0.0

    def for_model(self, model: str) -> list[ChatRequest]:
        return [r for r in self.requests if r.model == model]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._complete)

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = str(body.get("model", ""))
        messages = list(body.get("messages") or [])
        self.requests.append(ChatRequest(model, messages, body, request.headers.get("Authorization")))
        if self._delay:
            await asyncio.sleep(self._delay)
        key = model if model in self._failures else None
        failure = self._failures.get(key)
        if failure is not None and key in self._failures_left:
            self._failures_left[key] -= 1
            if self._failures_left[key] <= 0:
                del self._failures[key], self._failures_left[key]
        if failure is not None:
            status, error = failure
            if error is None:
                error = {"error": ROUTER_ERRORS.get(status, f"fake router error {status}").format(model=model)}
                if status == 503:
                    error["estimated_time"] = 20.0
            return web.json_response(error, status=status)
        text = self.replies.get(model, f"Fake answer from {model}.")
        return web.json_response(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
        )
