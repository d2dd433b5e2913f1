"""The provider interface and its one error vocabulary, which the fallback chain decides on."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from PIL import Image, UnidentifiedImageError

from bot.catalog import ModelId
from bot.timing import elapsed_ms

from .limits import DEFAULT_MAX_BYTES, TooLarge, check_pixels


@dataclass(frozen=True, slots=True)
class ImageOptions:
    """What a caller may ask for; each provider maps it onto the parameters it really accepts."""

    width: int | None = None
    height: int | None = None
    aspect_ratio: str | None = None  # "16:9"; used when width/height are not given
    count: int = 1
    seed: int | None = None
    negative_prompt: str | None = None
    style: str | None = None  # a style preset id (bot.styles); the generation service folds it into the prompt

    def size(self, default: int = 1024, multiple: int = 16) -> tuple[int, int]:
        """Width and height in pixels, derived from the aspect ratio when not given, rounded to `multiple`."""
        if self.width and self.height:
            w, h = self.width, self.height
        elif self.aspect_ratio:
            rw, rh = parse_ratio(self.aspect_ratio)
            if rw >= rh:
                w, h = default, round(default * rh / rw)
            else:
                w, h = round(default * rw / rh), default
        else:
            w = h = default
        return _round_to(w, multiple), _round_to(h, multiple)


# Ratios most image APIs accept (Gemini's image_config and Replicate's flux models share these).
COMMON_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "9:21")


def parse_ratio(text: str) -> tuple[int, int]:
    left, sep, right = text.partition(":")
    if not sep or not left.isdigit() or not right.isdigit() or int(left) == 0 or int(right) == 0:
        raise ValueError(f"not an aspect ratio: {text!r}")
    return int(left), int(right)


def closest_ratio(width: int, height: int, choices: tuple[str, ...] = COMMON_RATIOS) -> str:
    target = width / height

    def distance(ratio: str) -> float:
        w, h = parse_ratio(ratio)
        return abs(target - w / h)

    return min(choices, key=distance)


def supported_ratio(options: ImageOptions, choices: tuple[str, ...] = COMMON_RATIOS) -> str:
    """The ratio in `choices` closest to what was asked for: APIs reject ratios they do not list."""
    if options.aspect_ratio:
        try:
            return closest_ratio(*parse_ratio(options.aspect_ratio), choices)
        except ValueError:
            return "1:1"
    if options.width and options.height:
        return closest_ratio(options.width, options.height, choices)
    return "1:1"


def _round_to(value: int, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


@dataclass(frozen=True, slots=True)
class ProviderImage:
    """Image bytes that Pillow decoded, plus which provider and concrete model made them."""

    data: bytes
    provider: str
    model: str
    mime_type: str = "image/png"
    prompt_shortened: bool = False  # the provider got a cut prompt (e.g. a URL cap): the caption says so
    seed: int | None = None  # the seed the provider was sent (None: it takes none), for the caption
    width: int = 0  # as decoded
    height: int = 0


class Option(StrEnum):
    """Options a model may take or ignore. Providers declare theirs in `accepts`, so the caption can
    say once which of the user's options a model ignored, from a table rather than ad hoc."""

    ASPECT_RATIO = "aspect_ratio"  # an aspect ratio or a size
    SEED = "seed"
    NEGATIVE_PROMPT = "negative_prompt"


ALL_OPTIONS = frozenset(Option)


def accepted_options(provider: object, model: ModelId) -> frozenset[Option]:
    """What `provider` does with `model`: its `accepts` table; a provider without one takes everything."""
    accepts = getattr(provider, "accepts", None)
    if accepts is None:
        return ALL_OPTIONS
    return frozenset(accepts.get(model, ALL_OPTIONS))


class ErrorKind(StrEnum):
    NOT_CONFIGURED = "not_configured"  # no key: skipped, not an outage
    AUTH = "auth"  # 401/403: the key is wrong
    NO_ACCESS = "no_access"  # the key works but not for this model (gated, PRO-only)
    RATE_LIMITED = "rate_limited"  # 429 / 402 quota spent
    BAD_REQUEST = "bad_request"  # 4xx we caused
    UNAVAILABLE = "unavailable"  # 5xx, connection refused, DNS
    TIMEOUT = "timeout"
    BAD_OUTPUT = "bad_output"  # 2xx but no decodable image
    # The provider's content filter declined the prompt or its image. Final: the chain does not shop
    # for a laxer filter (unless REFUSAL_FALLBACK=1), and it is no outage (the provider does not rest).
    REFUSED = "refused"
    TOO_LARGE = "too_large"  # a body over PROVIDER_MAX_BYTES or an image over the pixel cap: never read whole


def http_error_kind(status: int) -> ErrorKind:
    """The plain reading of an HTTP error status; providers refine it with what their bodies say."""
    if status in (401, 403):
        return ErrorKind.AUTH
    if status in (402, 429):
        return ErrorKind.RATE_LIMITED
    if status >= 500:
        return ErrorKind.UNAVAILABLE
    return ErrorKind.BAD_REQUEST


@dataclass(slots=True)
class ProviderError(Exception):
    """A failed provider call. Carries no key: safe to log as is."""

    kind: ErrorKind
    provider: str
    model: str
    status: int | None = None
    detail: str = ""
    latency_ms: int | None = field(default=None)

    def __str__(self) -> str:
        status = f" HTTP {self.status}" if self.status is not None else ""
        return f"{self.provider}/{self.model}: {self.kind}{status} {self.detail}".strip()


class ImageProvider(Protocol):
    """One upstream service. `generate` returns one decoded image or raises ProviderError.

    A provider may also declare `accepts: Mapping[ModelId, frozenset[Option]]`, the options each
    model really takes (read through `accepted_options`; none declared = all taken)."""

    name: str
    models: frozenset[ModelId]

    def available(self, model: ModelId) -> bool:
        """True when this provider serves `model` and the keys it needs for it are present."""
        ...

    async def generate(self, model: ModelId, prompt: str, options: ImageOptions) -> ProviderImage: ...

    async def aclose(self) -> None: ...


def provider_for(providers: Iterable[ImageProvider], model: ModelId) -> ImageProvider | None:
    """The first provider that serves `model` (the configured order decides when two do)."""
    return next((p for p in providers if model in p.models), None)


def excerpt(text: str | bytes | None, limit: int = 200, *, hide: Iterable[str | None] = ()) -> str:
    """A short single-line excerpt of a response body for logs, with the `hide` secrets masked first:
    masking after the cut would miss a key cut in half at the edge."""
    if text is None:
        return ""
    secrets = [s for s in hide if s]
    if isinstance(text, bytes):
        cap = limit * 4  # no need to decode a 20 MB body for 200 characters
        cut = len(text) > cap
        text = redact(text[:cap].decode("utf-8", errors="replace"), *secrets)
        if cut:
            text = _mask_cut_tail(text, secrets)
    else:
        text = redact(text, *secrets)
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _mask_cut_tail(text: str, secrets: list[str]) -> str:
    """A text cut short may end in the first part of a secret: mask that part too."""
    for secret in secrets:
        for size in range(min(len(secret) - 1, len(text)), 0, -1):
            if text.endswith(secret[:size]):
                return text[:-size] + "***"
    return text


def redact(text: str, *secrets: str | None) -> str:
    """Remove every secret from a string before it reaches a log."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def decode_image(data: bytes | None, provider: str, model: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ProviderImage:
    """Accept bytes only if Pillow can decode them within the caps; anything else falls through the chain.

    Decoded once: the size is checked from the header before any pixel is read, and only formats
    Telegram may not take as a photo (WebP, GIF...) are re-encoded as PNG from that one decode.
    CPU-bound for a full-size image: providers call it through asyncio.to_thread, off the event loop.
    """
    if not data:
        raise ProviderError(ErrorKind.BAD_OUTPUT, provider, model, detail="empty body")
    try:
        if len(data) > max_bytes:
            raise TooLarge(f"body of {len(data)} bytes is over the {max_bytes}-byte cap")
        with Image.open(io.BytesIO(data)) as img:
            check_pixels(*img.size)
            width, height = img.size
            img.load()
            fmt = (img.format or "PNG").upper()
            if fmt not in KEPT_FORMATS:
                buf = io.BytesIO()
                img.save(buf, format="PNG")
                data, fmt = buf.getvalue(), "PNG"
    except TooLarge as exc:
        raise ProviderError(ErrorKind.TOO_LARGE, provider, model, detail=str(exc)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ProviderError(ErrorKind.TOO_LARGE, provider, model, detail=str(exc)[:200]) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ProviderError(
            ErrorKind.BAD_OUTPUT, provider, model, detail=f"not an image: {type(exc).__name__}"
        ) from None
    mime = Image.MIME.get(fmt, "image/png")
    return ProviderImage(data=data, provider=provider, model=model, mime_type=mime, width=width, height=height)


KEPT_FORMATS = frozenset({"PNG", "JPEG"})  # sent to Telegram as they came


async def decode_off_loop(
    data: bytes | None, provider: str, model: str, started: float, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> ProviderImage:
    """`decode_image` in a worker thread (a full-size decode would stall the loop); a failure carries
    the call's latency so far."""
    try:
        return await asyncio.to_thread(decode_image, data, provider, model, max_bytes=max_bytes)
    except ProviderError as exc:
        exc.latency_ms = elapsed_ms(started)
        raise
