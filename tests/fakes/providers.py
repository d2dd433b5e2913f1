"""Fake image-provider HTTP servers (Gemini, HF Hub, Replicate / HF router, Pollinations).

Each fake is a real aiohttp server on 127.0.0.1 with a random port, so the real client libraries
(google-genai, huggingface_hub, httpx) do real HTTP against it. Every fake:

- records each request in `.requests` (method, path, query, headers, JSON body),
- serves real images made with Pillow in its own colour (`.color`, `.made(data)`),
- can be told to misbehave per model / route with `.behave(mode, key=..., ...)`.

Usage::

    async with FakeReplicate() as fake:
        fake.behave("status", key="black-forest-labs/flux-dev", status=403, body={"detail": "no access"})
        ...
        assert fake.requests[0].header("authorization") == "Bearer hf_x"

Modes shared by all fakes: "ok", "status" (answer `status` with `body`), "delay" (sleep `seconds`,
then answer ok: use it to trip client timeouts), "garbage" (200 with bytes that are not an image),
"empty" (200 with nothing usable). Where the image bytes are served (Pollinations' answer, Replicate's
output file, Gemini's inline data): "huge" (200 streaming `size` bytes, no Content-Length), "bomb"
(a small PNG of `size`×`size` pixels), "stall" (never answer, until the fake stops). Fakes add their
own (see each class).

They run in the test's event loop: a client that blocks the loop (a sync HTTP client called from a
coroutine) deadlocks against them, which is exactly the bug they are meant to expose.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
import itertools
import json
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from aiohttp import web
from PIL import Image

from tests.fakes.router import FakeRouterChat

RGB = tuple[int, int, int]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

GARBAGE = b"<html><body>definitely not an image</body></html>"


def make_image(color: RGB, size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    """A small solid-colour image, encoded for real, so clients that decode it succeed."""
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


@functools.lru_cache(maxsize=4)
def bomb_png(width: int, height: int) -> bytes:
    """A valid all-black greyscale PNG of width×height that is tiny on the wire (a 12000×12000 one is
    about 140 KB) but would take width×height bytes and more once decoded. Built row by row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + one byte per pixel
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def image_color(data: bytes) -> RGB:
    """The colour of an image's centre pixel, as RGB (works for PNG, JPEG, WebP...)."""
    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB")
        pixel = rgb.getpixel((rgb.width // 2, rgb.height // 2))
    assert isinstance(pixel, tuple)
    return (int(pixel[0]), int(pixel[1]), int(pixel[2]))


def color_close(a: RGB, b: RGB, tolerance: int = 12) -> bool:
    """True when two colours match within `tolerance` per channel (JPEG shifts colours a little)."""
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request a fake received, as the client sent it."""

    method: str
    path: str  # decoded
    raw_path: str  # as sent, with percent-escapes and query string
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    json: Any
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(slots=True)
class Behaviour:
    mode: str = "ok"
    status: int = 500
    body: Any = None
    seconds: float = 3.0
    polls: int = 2
    headers: dict[str, str] = field(default_factory=dict)
    size: int = 12000
    times: int | None = None  # answer this way this many times, then as "ok" (None: always)


class FakeServer:
    """Base: start/stop on 127.0.0.1:0, request recording, per-key behaviours."""

    default_color: ClassVar[RGB] = (128, 128, 128)
    image_format: ClassVar[str] = "PNG"
    modes: ClassVar[frozenset[str]] = frozenset({"ok", "status", "delay", "garbage", "empty", "huge", "bomb", "stall"})

    def __init__(self, *, color: RGB | None = None, tokens: set[str] | list[str] | None = None) -> None:
        self.color: RGB = color or self.default_color
        # When set, only these keys are accepted (each fake checks its own auth header).
        self.tokens: set[str] | None = set(tokens) if tokens else None
        self.requests: list[RecordedRequest] = []
        self._behaviours: dict[str | None, Behaviour] = {}
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing: asyncio.Event | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> Self:
        self._closing = asyncio.Event()
        app = web.Application(middlewares=[self._record], client_max_size=64 * 1024 * 1024)
        self._add_routes(app)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._closing is not None:
            self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- behaviour ---------------------------------------------------------------------------
    def behave(
        self,
        mode: str = "ok",
        *,
        key: str | None = None,
        status: int = 500,
        body: Any = None,
        seconds: float = 3.0,
        polls: int = 2,
        headers: dict[str, str] | None = None,
        size: int = 12000,
        times: int | None = None,
    ) -> None:
        """Set how the fake answers requests for `key` (a model or route; None = every key), for the
        next `times` requests (None: until told otherwise)."""
        if mode not in self.modes:
            raise ValueError(f"{type(self).__name__} has no mode {mode!r}; choose from {sorted(self.modes)}")
        self._behaviours[key] = Behaviour(mode, status, body, seconds, polls, dict(headers or {}), size, times)

    def behaviour(self, key: str | None) -> Behaviour:
        """The behaviour for one request (counts down a limited one)."""
        b = self._behaviours.get(key) or self._behaviours.get(None) or Behaviour()
        if b.times is not None:
            if b.times <= 0:
                return Behaviour()
            b.times -= 1
        return b

    def reset(self) -> None:
        self._behaviours.clear()
        self.requests.clear()

    # -- inspection --------------------------------------------------------------------------
    def made(self, data: bytes, tolerance: int = 12) -> bool:
        """True when `data` is an image in this fake's colour."""
        return color_close(image_color(data), self.color, tolerance)

    def image(self) -> bytes:
        return make_image(self.color, fmt=self.image_format)

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def requests_to(self, fragment: str) -> list[RecordedRequest]:
        return [r for r in self.requests if fragment in r.path]

    # -- helpers for subclasses --------------------------------------------------------------
    def _add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        parsed: Any = None
        if body and "json" in (request.content_type or ""):
            with contextlib.suppress(ValueError):
                parsed = json.loads(body)
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                raw_path=request.raw_path,
                query=dict(request.query),
                headers={k.lower(): v for k, v in request.headers.items()},
                json=parsed,
                body=body,
            )
        )
        return await handler(request)

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": f"no route {request.method} {request.path}"}, status=404)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up early when the fake stops so shutdown stays fast."""
        assert self._closing is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _error_body(self, status: int) -> Any:
        return {"error": f"fake error {status}"}

    def _status_response(self, b: Behaviour) -> web.Response:
        body = b.body if b.body is not None else self._error_body(b.status)
        if isinstance(body, bytes):
            return web.Response(body=body, status=b.status, headers=b.headers)
        if isinstance(body, str):
            return web.Response(text=body, status=b.status, headers=b.headers)
        return web.json_response(body, status=b.status, headers=b.headers)

    async def _oversized(self, request: web.Request, b: Behaviour) -> web.StreamResponse | None:
        """The image-bytes modes ("huge", "bomb", "stall"); None for any other mode."""
        if b.mode == "stall":
            await self._sleep(3600)
            return web.Response(status=503)
        if b.mode == "bomb":
            return web.Response(body=bomb_png(b.size, b.size), content_type="image/png")
        if b.mode != "huge":
            return None
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        block = b"\x00" * (1024 * 1024)
        left = b.size
        with contextlib.suppress(ConnectionError, RuntimeError):  # the client hung up: what a cap does
            while left > 0:
                await response.write(block[: min(left, len(block))])
                left -= len(block)
            await response.write_eof()
        return response

    async def _prelude(self, b: Behaviour) -> web.Response | None:
        """Apply the shared modes; a response means "answer this", None means "carry on as ok"."""
        if b.mode == "delay":
            await self._sleep(b.seconds)
        elif b.mode == "status":
            return self._status_response(b)
        return None

    @staticmethod
    def _bearer(request: web.Request) -> str | None:
        value = request.headers.get("Authorization", "")
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class FakeGemini(FakeServer):
    """Gemini API: `POST /{v1|v1beta}/models/{model}:generateContent`, key in `x-goog-api-key`.

    Key for behave(): the model id. Extra modes: "no_image" (text part only). The two refusal shapes
    (HTTP 200 both): "blocked" = the prompt was blocked, `promptFeedback.blockReason` (`body`, default
    SAFETY) and no candidates; "image_blocked" = the image was, a candidate without content whose
    `finishReason` is `body` (default IMAGE_SAFETY). "garbage" = an inlineData part that is not an image;
    "empty" = `{"candidates": []}`. A key not in `tokens` gets Gemini's real answer for a bad key:
    400 INVALID_ARGUMENT with reason API_KEY_INVALID.
    """

    default_color: ClassVar[RGB] = (30, 90, 220)
    modes: ClassVar[frozenset[str]] = FakeServer.modes | {"no_image", "blocked", "image_blocked"}

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/{version:v1|v1beta|v1alpha}/models/{call}", self._generate)

    def received_images(self) -> list[bytes]:
        """The images sent to the model (inlineData parts of the request contents), in order."""
        images = []
        for request in self.requests:
            for content in (request.json or {}).get("contents") or []:
                for part in content.get("parts") or []:
                    inline = part.get("inlineData") or part.get("inline_data")
                    if inline and inline.get("data"):
                        # google-genai sends bytes URL-safe base64-encoded; the API takes either alphabet.
                        text = inline["data"].replace("+", "-").replace("/", "_")
                        images.append(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return images

    def received_texts(self) -> list[str]:
        """The text parts of every request's contents, in order."""
        return [
            part["text"]
            for request in self.requests
            for content in (request.json or {}).get("contents") or []
            for part in content.get("parts") or []
            if part.get("text")
        ]

    def _error_body(self, status: int) -> Any:
        names = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            503: "UNAVAILABLE",
        }
        return {
            "error": {"code": status, "message": f"fake gemini error {status}", "status": names.get(status, "UNKNOWN")}
        }

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["call"].partition(":")
        if method != "generateContent":
            return await self._not_found(request)
        if self.tokens is not None and request.headers.get("x-goog-api-key") not in self.tokens:
            return web.json_response(
                {
                    "error": {
                        "code": 400,
                        "message": "API key not valid. Please pass a valid API key.",
                        "status": "INVALID_ARGUMENT",
                        "details": [
                            {
                                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                "reason": "API_KEY_INVALID",
                                "domain": "googleapis.com",
                            }
                        ],
                    }
                },
                status=400,
            )
        b = self.behaviour(model)
        if (early := await self._prelude(b)) is not None:
            return early
        if b.mode == "empty":
            return web.json_response({"candidates": [], "modelVersion": model})
        if b.mode == "blocked":
            return web.json_response(
                {
                    "promptFeedback": {"blockReason": b.body or "SAFETY", "safetyRatings": []},
                    "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 0, "totalTokenCount": 7},
                    "modelVersion": model,
                }
            )
        if b.mode == "image_blocked":
            return web.json_response(
                {
                    "candidates": [{"finishReason": b.body or "IMAGE_SAFETY", "index": 0}],
                    "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
                    "modelVersion": model,
                    "responseId": "fake-response",
                }
            )
        if b.mode in ("huge", "stall"):
            return await self._oversized(request, b)
        parts: list[dict[str, Any]] = [{"text": "Here is the picture you asked for."}]
        if b.mode != "no_image":
            data = GARBAGE if b.mode == "garbage" else bomb_png(b.size, b.size) if b.mode == "bomb" else self.image()
            parts.append({"inlineData": {"mimeType": "image/png", "data": base64.b64encode(data).decode()}})
        return web.json_response(
            {
                "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 1290, "totalTokenCount": 1297},
                "modelVersion": model,
                "responseId": "fake-response",
            }
        )


DEFAULT_HUB_MAPPING: dict[str, str] = {
    "black-forest-labs/FLUX.1-dev": "black-forest-labs/flux-dev",
    "black-forest-labs/FLUX.1-schnell": "black-forest-labs/flux-schnell",
    "black-forest-labs/FLUX.1-Kontext-dev": "black-forest-labs/flux-kontext-dev",
}
# The task of each repo's mapping (huggingface_hub refuses a mapping for another task); others text-to-image.
HUB_TASKS: dict[str, str] = {"black-forest-labs/FLUX.1-Kontext-dev": "image-to-image"}


class FakeHub(FakeServer):
    """Hugging Face Hub API: `GET /api/models/{org}/{name}` with `inferenceProviderMapping`.

    Answers the shape huggingface_hub 2.4 parses (a dict keyed by provider, each with providerId,
    status, task). `mapping` is HF repo id → Replicate model id. Unknown repos get the Hub's real
    404 (X-Error-Code: RepoNotFound). Key for behave(): the HF repo id.
    """

    def __init__(self, *, mapping: dict[str, str] | None = None, color: RGB | None = None) -> None:
        super().__init__(color=color)
        self.mapping = dict(DEFAULT_HUB_MAPPING if mapping is None else mapping)

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/models/{org}/{name}", self._model_info)

    def _error_body(self, status: int) -> Any:
        return {"error": f"fake hub error {status}"}

    async def _model_info(self, request: web.Request) -> web.StreamResponse:
        repo = f"{request.match_info['org']}/{request.match_info['name']}"
        b = self.behaviour(repo)
        if (early := await self._prelude(b)) is not None:
            return early
        if (odd := await self._oversized(request, b)) is not None:
            return odd
        if repo not in self.mapping:
            return web.json_response(
                {"error": "Repository not found"}, status=404, headers={"X-Error-Code": "RepoNotFound"}
            )
        return web.json_response(
            {
                "_id": "fake" + repo.replace("/", ""),
                "id": repo,
                "pipeline_tag": HUB_TASKS.get(repo, "text-to-image"),
                "inferenceProviderMapping": {
                    "replicate": {
                        "status": "live",
                        "providerId": self.mapping[repo],
                        "task": HUB_TASKS.get(repo, "text-to-image"),
                    },
                    "fal-ai": {"status": "live", "providerId": "fal-ai/flux/dev", "task": "text-to-image"},
                },
            }
        )


# Replicate models whose `output` is a single URL string rather than a list.
STRING_OUTPUT_MODELS = frozenset(
    {
        "black-forest-labs/flux-1.1-pro",
        "black-forest-labs/flux-pro",
        "black-forest-labs/flux-kontext-pro",
        "black-forest-labs/flux-kontext-dev",
        "nightmareai/real-esrgan",
    }
)
# Upscalers: their output is the input image (`image`, a data URI) enlarged `scale` times, in their colour.
UPSCALER_MODELS = frozenset({"nightmareai/real-esrgan"})

# What a content filter's failed prediction says (see bot/providers/replicate_errors.py for the sources).
COG_FLUX_MODELS = frozenset({"black-forest-labs/flux-dev", "black-forest-labs/flux-schnell"})
COG_FLUX_NSFW = "All generated images contained NSFW content. Try running it again with a different prompt."
REPLICATE_E005 = "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"

DEFAULT_REPLICATE_COLORS: dict[str, RGB] = {
    "black-forest-labs/flux-dev": (40, 170, 60),
    "black-forest-labs/flux-schnell": (230, 200, 30),
    "black-forest-labs/flux-1.1-pro": (200, 40, 200),
    "black-forest-labs/flux-kontext-pro": (240, 140, 20),
    "black-forest-labs/flux-kontext-dev": (140, 60, 20),
    "nightmareai/real-esrgan": (20, 200, 200),
}


class FakeReplicate(FakeServer):
    """Replicate predictions API, also usable as the HF router (routes mounted under `/replicate`).

    - `POST [/replicate]/v1/models/{owner}/{name}/predictions` → a prediction; `output` is a list of
      URLs (a single string for flux-1.1-pro) pointing at `GET /files/{id}.png` on this fake.
    - `GET [/replicate]/v1/predictions/{id}` → the prediction (for polling).

    Key for behave(): "owner/name" of the Replicate model. Extra modes: "processing" (the POST
    answers status "starting"; `polls` GETs later it has succeeded), "failed" (status "failed"
    with an error), "no_output" (succeeded without output). "garbage"/"empty" corrupt the file.
    "nsfw": the content filter fails the prediction the way the real one does (`body` overrides the
    error): FLUX.1 dev/schnell with cog-flux's safety-checker message, unless the input had
    `disable_safety_checker: true` (then it succeeds, as the real model would); every other model with
    Replicate's E005 "flagged as sensitive". Each model's image has its own colour: `color_for(model)`.
    """

    default_color: ClassVar[RGB] = (90, 90, 90)
    modes: ClassVar[frozenset[str]] = FakeServer.modes | {"processing", "failed", "no_output", "nsfw"}

    def __init__(
        self,
        *,
        colors: dict[str, RGB] | None = None,
        color: RGB | None = None,
        tokens: set[str] | list[str] | None = None,
    ) -> None:
        super().__init__(color=color, tokens=tokens)
        self.colors = {**DEFAULT_REPLICATE_COLORS, **(colors or {})}
        self._ids = itertools.count(1)
        self._predictions: dict[str, dict[str, Any]] = {}
        self._files: dict[str, bytes] = {}
        self._file_behaviours: dict[str, Behaviour] = {}  # "huge", "bomb", "stall" output files
        self._pending_polls: dict[str, int] = {}
        self.chat = FakeRouterChat()  # the router's OpenAI-compatible chat endpoint (tests/fakes/router.py)

    def color_for(self, model: str) -> RGB:
        return self.colors.get(model, self.color)

    def made_by(self, data: bytes, model: str, tolerance: int = 12) -> bool:
        return color_close(image_color(data), self.color_for(model), tolerance)

    def predictions_for(self, model: str) -> list[RecordedRequest]:
        """Predictions created for `model` ("owner/name"), by model route or by `version` at /v1/predictions."""
        return [
            r
            for r in self.requests
            if r.method == "POST"
            and (
                r.path.endswith(f"/models/{model}/predictions")
                or (
                    r.path.endswith("/v1/predictions") and str((r.json or {}).get("version", "")).split(":")[0] == model
                )
            )
        ]

    def _add_routes(self, app: web.Application) -> None:
        for prefix in ("", "/replicate"):
            app.router.add_post(prefix + "/v1/models/{owner}/{name}/predictions", self._create)
            app.router.add_post(prefix + "/v1/predictions", self._create_versioned)
            app.router.add_get(prefix + "/v1/predictions/{id}", self._get)
        app.router.add_get("/files/{file}", self._file)
        self.chat.add_routes(app)

    def _error_body(self, status: int) -> Any:
        return {"title": f"fake replicate error {status}", "detail": f"fake replicate error {status}", "status": status}

    def _unauthorized(self) -> web.Response:
        return web.json_response(
            {"title": "Unauthenticated", "detail": "You did not pass a valid authentication token", "status": 401},
            status=401,
        )

    async def _create_versioned(self, request: web.Request) -> web.StreamResponse:
        """`POST /v1/predictions` with `"version": "owner/name:id"` (or `owner/name`), as community models run."""
        body = await request.json()
        version = str(body.get("version", ""))
        if "/" not in version:
            return web.json_response({"detail": "Invalid version or not permitted", "status": 422}, status=422)
        return await self._create(request, version.split(":", 1)[0])

    async def _create(self, request: web.Request, model: str | None = None) -> web.StreamResponse:
        model = model or f"{request.match_info['owner']}/{request.match_info['name']}"
        if self.tokens is not None and self._bearer(request) not in self.tokens:
            return self._unauthorized()
        b = self.behaviour(model)
        if (early := await self._prelude(b)) is not None:
            return early
        body = await request.json()
        pid = f"pred{next(self._ids)}"
        prefix = "/replicate" if request.path.startswith("/replicate/") else ""
        file_bytes = self._output_image(model, body.get("input", {}))
        if b.mode == "garbage":
            file_bytes = GARBAGE
        elif b.mode == "empty":
            file_bytes = b""
        self._files[pid] = file_bytes
        if b.mode in ("huge", "bomb", "stall"):
            self._file_behaviours[pid] = b
        file_url = f"{self.url}/files/{pid}.png"
        output: Any = file_url if model in STRING_OUTPUT_MODELS else [file_url]
        prediction: dict[str, Any] = {
            "id": pid,
            "model": model,
            "version": "hidden",
            "input": body.get("input", {}),
            "logs": "",
            "error": None,
            "status": "succeeded",
            "output": output,
            "urls": {
                "get": f"{self.url}{prefix}/v1/predictions/{pid}",
                "cancel": f"{self.url}{prefix}/v1/predictions/{pid}/cancel",
            },
        }
        if b.mode == "processing":
            self._pending_polls[pid] = b.polls
            self._predictions[pid] = prediction
            return web.json_response({**prediction, "status": "starting", "output": None}, status=201)
        if b.mode == "failed":
            prediction.update(status="failed", output=None, error="fake: the model crashed")
        elif b.mode == "nsfw" and (refusal := self._refusal(model, body.get("input", {}), b)) is not None:
            prediction.update(status="failed", output=None, error=refusal)
        elif b.mode == "no_output":
            prediction.update(output=None)
        self._predictions[pid] = prediction
        return web.json_response(prediction, status=201)

    def _output_image(self, model: str, given: dict[str, Any]) -> bytes:
        """The model's colour; an upscaler's is the input's size times `scale` (so a test sees it grew)."""
        source = given.get("image") if model in UPSCALER_MODELS else None
        if isinstance(source, str) and source.startswith("data:") and "," in source:
            with Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))) as img:
                width, height = img.size
            scale = int(given.get("scale") or 4)
            return make_image(self.color_for(model), (width * scale, height * scale))
        return make_image(self.color_for(model))

    @staticmethod
    def _refusal(model: str, given: dict[str, Any], b: Behaviour) -> str | None:
        if b.body is not None:
            return str(b.body)
        if model in COG_FLUX_MODELS:
            return None if given.get("disable_safety_checker") is True else COG_FLUX_NSFW
        return REPLICATE_E005

    async def _get(self, request: web.Request) -> web.StreamResponse:
        if self.tokens is not None and self._bearer(request) not in self.tokens:
            return self._unauthorized()
        pid = request.match_info["id"]
        prediction = self._predictions.get(pid)
        if prediction is None:
            return web.json_response({"detail": "Not found."}, status=404)
        left = self._pending_polls.get(pid, 0)
        if left > 0:
            self._pending_polls[pid] = left - 1
            return web.json_response({**prediction, "status": "processing", "output": None})
        return web.json_response(prediction)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        pid = request.match_info["file"].removesuffix(".png")
        if pid not in self._files:
            return web.Response(status=404, text="no such file")
        if pid in self._file_behaviours and (odd := await self._oversized(request, self._file_behaviours[pid])):
            return odd
        return web.Response(body=self._files[pid], content_type="image/png")


class FakePollinations(FakeServer):
    """Pollinations: keyless `GET /prompt/{prompt}` and keyed `GET /image/{prompt}`, both JPEG.

    `/image/...` answers 401 without `Authorization: Bearer ...` (or with a key not in `tokens`).
    Key for behave(): "prompt" or "image". "garbage" = 200 image/jpeg with non-image bytes. "nsfw" = the
    image is flagged by Pollinations' NSFW check: with `safe=true` its real answer (HTTP 500, JSON with
    "NSFW content detected..."), without it the image anyway, as the real service does.
    `prompts` lists the decoded prompts seen.
    """

    default_color: ClassVar[RGB] = (220, 60, 40)
    image_format: ClassVar[str] = "JPEG"
    modes: ClassVar[frozenset[str]] = FakeServer.modes | {"nsfw"}

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/prompt/{prompt:.+}", self._legacy)
        app.router.add_get("/image/{prompt:.+}", self._keyed)

    @property
    def prompts(self) -> list[str]:
        out = []
        for r in self.requests:
            for prefix in ("/prompt/", "/image/"):
                if r.path.startswith(prefix):
                    out.append(r.path[len(prefix) :])
        return out

    async def _legacy(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "prompt")

    async def _keyed(self, request: web.Request) -> web.StreamResponse:
        token = self._bearer(request)
        if token is None or (self.tokens is not None and token not in self.tokens):
            return web.json_response(
                {"success": False, "error": {"code": "UNAUTHORIZED", "message": "Authentication required"}},
                status=401,
            )
        return await self._serve(request, "image")

    async def _serve(self, request: web.Request, route: str) -> web.StreamResponse:
        b = self.behaviour(route)
        if (early := await self._prelude(b)) is not None:
            return early
        if b.mode == "nsfw" and request.query.get("safe", "").lower() == "true":
            message = "NSFW content detected. This request cannot be fulfilled when safe mode is enabled."
            return web.json_response(
                {"error": "Internal Server Error", "message": message, "requestParameters": dict(request.query)},
                status=500,
                headers={"X-Error-Type": "Internal Server Error"},
            )
        if b.mode == "garbage":
            return web.Response(body=GARBAGE, content_type="image/jpeg")
        if b.mode == "empty":
            return web.Response(body=b"", content_type="image/jpeg")
        if (odd := await self._oversized(request, b)) is not None:
            return odd
        return web.Response(body=self.image(), content_type="image/jpeg")
