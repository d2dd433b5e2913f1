"""Gemini image models (e.g. gemini-3.1-flash-image) through google-genai's async client.

Wire (google-genai 3.4): `POST {base_url}/{api_version}/models/{model}:generateContent` with the key
in `x-goog-api-key`; the image comes back base64 in `candidates[0].content.parts[*].inlineData`.
Plain text models (gemini-2.5-flash) answer 400 to IMAGE output, so the model id is configurable.

Refusals (HTTP 200 both): a blocked prompt comes back with `promptFeedback.blockReason` (SAFETY, OTHER,
BLOCKLIST, PROHIBITED_CONTENT, IMAGE_SAFETY, ...) and no candidates; a blocked image as a candidate
without image parts whose `finishReason` is IMAGE_SAFETY, SAFETY, PROHIBITED_CONTENT, ... Both are
ErrorKind.REFUSED. NO_IMAGE, OTHER and a text-only STOP are not policy refusals: BAD_OUTPUT.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
import httpx

from bot.catalog import ModelId
from bot.safety import SafetyLevel
from bot.timing import elapsed_ms

from .base import (
    ErrorKind,
    ImageOptions,
    Option,
    ProviderError,
    ProviderImage,
    decode_off_loop,
    excerpt,
    http_error_kind,
    redact,
    supported_ratio,
)
from .limits import DEFAULT_MAX_BYTES

# google-genai is imported at first use (a call, or the client built for one): a front end or a bot
# without GEMINI_API_KEY that never calls Gemini does not pay its ~24 MiB and 240 modules.
if TYPE_CHECKING:
    from google import genai
    from google.genai import errors as genai_errors
    from google.genai import types

log = logging.getLogger(__name__)

# Ratios Gemini's ImageConfig accepts (no 9:21, unlike Replicate's FLUX models).
GEMINI_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")

# Finish reasons that mean "the content filter stopped this" (google-genai 3.4's FinishReason).
REFUSAL_FINISH_REASONS = frozenset(
    {"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "MODEL_ARMOR"}
)


@functools.cache
def _safety_table() -> tuple[tuple[types.HarmCategory, ...], Mapping[SafetyLevel, types.HarmBlockThreshold]]:
    """The categories and each level's threshold, sent on every call (newer Gemini models default to no
    blocking at all for these categories). Built at first use: they are google-genai's enums."""
    from google.genai import types

    categories = (
        types.HarmCategory.HARM_CATEGORY_HARASSMENT,
        types.HarmCategory.HARM_CATEGORY_HATE_SPEECH,
        types.HarmCategory.HARM_CATEGORY_SEXUALLY_EXPLICIT,
        types.HarmCategory.HARM_CATEGORY_DANGEROUS_CONTENT,
    )
    thresholds = {
        SafetyLevel.STANDARD: types.HarmBlockThreshold.BLOCK_MEDIUM_AND_ABOVE,
        SafetyLevel.STRICT: types.HarmBlockThreshold.BLOCK_LOW_AND_ABOVE,
    }
    return categories, thresholds


class GeminiProvider:
    """Gemini Flash image generation. Uses only the key it is given, never GOOGLE_API_KEY from the env."""

    name = "gemini"
    models = frozenset({ModelId.GEMINI_FLASH})
    # Aspect ratio through image_config; a negative prompt folded into the text (fold_negative). No seed:
    # generationConfig.seed does not make Gemini's images reproducible, so none is sent or reported.
    accepts: ClassVar[Mapping[ModelId, frozenset[Option]]] = {
        ModelId.GEMINI_FLASH: frozenset({Option.ASPECT_RATIO, Option.NEGATIVE_PROMPT})
    }

    def __init__(
        self,
        api_key: str | None,
        model: str,
        base_url: str,
        timeout: float,
        *,
        api_version: str = "v1",
        safety: SafetyLevel = SafetyLevel.STANDARD,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._key = api_key or None
        self._model = model
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        # google-genai reads the whole answer itself: the cap applies to the image it carried.
        self._max_bytes = max_bytes
        # Pinned so GOOGLE_GENAI_API_VERSION in the environment cannot change the wire format.
        self._api_version = api_version
        self._safety = safety
        self._client: genai.Client | None = None

    def available(self, model: ModelId) -> bool:
        return model in self.models and self._key is not None

    async def generate(self, model: ModelId, prompt: str, options: ImageOptions) -> ProviderImage:
        started = time.monotonic()
        if model not in self.models:
            raise self._error(ErrorKind.BAD_REQUEST, started, detail=f"{model} is not served here")
        if self._key is None:
            raise self._error(ErrorKind.NOT_CONFIGURED, started, detail="no Gemini API key")
        from google.genai import types

        config = types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],
            image_config=types.ImageConfig(aspect_ratio=supported_ratio(options, GEMINI_RATIOS)),
            safety_settings=safety_settings(self._safety),
        )
        image = await self._call(fold_negative(prompt, options.negative_prompt), config, started)
        log.info("gemini %s answered in %d ms", self._model, elapsed_ms(started))
        return image

    async def _call(
        self, contents: types.ContentListUnionDict, config: types.GenerateContentConfig, started: float
    ) -> ProviderImage:
        """One generate_content call to an image answer, every failure a ProviderError (generate and edit)."""
        from google.genai import errors as genai_errors  # before the try: its `except` names it

        try:
            async with asyncio.timeout(self._timeout):
                response = await self._get_client().aio.models.generate_content(
                    model=self._model, contents=contents, config=config
                )
        except genai_errors.APIError as exc:
            raise self._api_error(exc, started) from None
        except TimeoutError:
            # Our own deadline, or aiohttp's ClientTimeout (a TimeoutError subclass).
            raise self._error(ErrorKind.TIMEOUT, started, detail=f"no answer within {self._timeout:g}s") from None
        except ValueError as exc:
            # The body was not the JSON google-genai expects (pydantic errors are ValueErrors too).
            raise self._error(
                ErrorKind.BAD_OUTPUT, started, detail=self._clean(f"{type(exc).__name__}: {exc}")
            ) from None
        except (aiohttp.ClientError, httpx.HTTPError, OSError) as exc:
            # google-genai talks aiohttp when it is installed (aiogram brings it), httpx otherwise.
            raise self._error(
                ErrorKind.UNAVAILABLE, started, detail=self._clean(f"{type(exc).__name__}: {exc}")
            ) from None
        data = self._image_bytes(response, started)
        return await decode_off_loop(data, self.name, self._model, started, max_bytes=self._max_bytes)

    def _image_bytes(self, response: types.GenerateContentResponse, started: float) -> bytes:
        """The generated image; thought images (interim drafts of thinking models) only if nothing else."""
        candidates = response.candidates or []
        candidate = candidates[0] if candidates else None
        parts = (candidate.content.parts if candidate is not None and candidate.content is not None else None) or []
        final: bytes | None = None
        draft: bytes | None = None
        texts: list[str] = []
        for part in parts:
            if part.inline_data is not None and part.inline_data.data:
                if part.thought:
                    draft = part.inline_data.data
                elif final is None:
                    final = part.inline_data.data
            elif part.text:
                texts.append(part.text)
        if final is not None:
            return final
        if draft is not None:
            return draft
        refusal = _refusal(response.prompt_feedback, candidate)
        if refusal is not None:
            raise self._error(ErrorKind.REFUSED, started, detail=self._clean(refusal))
        if candidate is None:
            raise self._error(ErrorKind.BAD_OUTPUT, started, detail="no candidates")
        detail = f"no image (finish reason {_name(candidate.finish_reason)})"
        if texts:
            detail += ": " + excerpt(" ".join(texts), 160)
        raise self._error(ErrorKind.BAD_OUTPUT, started, detail=self._clean(detail))

    def _api_error(self, exc: genai_errors.APIError, started: float) -> ProviderError:
        code = int(exc.code) if exc.code else None
        status = str(exc.status or "")
        message = exc.message or str(exc.details)
        kind = _kind_for(code, status, _error_reasons(exc.details))
        return self._error(kind, started, status=code, detail=self._excerpt(f"{status} {message}".strip()))

    def _get_client(self) -> genai.Client:
        """Built once, at the first call, and reused."""
        if self._client is None:
            from google import genai
            from google.genai import types

            self._client = genai.Client(
                vertexai=False,
                api_key=self._key,
                http_options=types.HttpOptions(
                    base_url=self._base_url,
                    api_version=self._api_version,
                    timeout=int(self._timeout * 1000),  # milliseconds
                    # An explicit single attempt also switches off google-genai's hidden
                    # sleep-1-to-10-s-and-retry on connection errors.
                    retry_options=types.HttpRetryOptions(attempts=1),
                ),
            )
        return self._client

    def _excerpt(self, text: str | bytes | None) -> str:
        return excerpt(text, hide=(self._key,))

    def _clean(self, text: str) -> str:
        return redact(text, self._key)

    def _error(self, kind: ErrorKind, started: float, *, status: int | None = None, detail: str = "") -> ProviderError:
        """Raised, not logged: the chain logs each failure once."""
        return ProviderError(kind, self.name, self._model, status=status, detail=detail, latency_ms=elapsed_ms(started))

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aio.aclose()
            client.close()


def _kind_for(code: int | None, status: str, reasons: str) -> ErrorKind:
    """The HTTP reading, corrected by Gemini's status words (which name some errors better than codes)."""
    kind = http_error_kind(code) if code is not None else ErrorKind.BAD_REQUEST
    if kind is ErrorKind.AUTH or "API_KEY_INVALID" in reasons or status == "UNAUTHENTICATED":
        return ErrorKind.AUTH  # Gemini answers a wrong key with 400 INVALID_ARGUMENT / API_KEY_INVALID, not 401.
    if status == "RESOURCE_EXHAUSTED":
        return ErrorKind.RATE_LIMITED
    if code == 400 and status == "FAILED_PRECONDITION":
        return ErrorKind.NO_ACCESS  # e.g. "User location is not supported", billing not enabled
    return kind


def safety_settings(level: SafetyLevel) -> list[types.SafetySetting]:
    """One threshold for every category, from SAFETY_LEVEL."""
    from google.genai import types

    categories, thresholds = _safety_table()
    threshold = thresholds[level]
    return [types.SafetySetting(category=category, threshold=threshold) for category in categories]


def fold_negative(prompt: str, negative: str | None) -> str:
    """Gemini has no negative-prompt parameter; as a language model it does understand "Avoid: ..."."""
    if not negative or not negative.strip():
        return prompt
    return f"{prompt}\n\nAvoid: {negative.strip()}"


def _error_reasons(details: Any) -> str:
    """The `reason` fields of a Google error body, joined (where API_KEY_INVALID shows up)."""
    if not isinstance(details, dict):
        return ""
    error = details.get("error", details)
    items = error.get("details") if isinstance(error, dict) else None
    if not isinstance(items, list):
        return ""
    return " ".join(str(item.get("reason", "")) for item in items if isinstance(item, dict))


def _refusal(
    feedback: types.GenerateContentResponsePromptFeedback | None, candidate: types.Candidate | None
) -> str | None:
    """The provider's reason when its filter blocked the prompt or the image, else None."""
    block = _name(feedback.block_reason) if feedback is not None else None
    if block and block != "BLOCKED_REASON_UNSPECIFIED":
        message = feedback.block_reason_message if feedback is not None else None
        return f"blockReason {block}" + (": " + excerpt(message, 160) if message else "")
    finish = _name(candidate.finish_reason) if candidate is not None else None
    if finish in REFUSAL_FINISH_REASONS:
        message = candidate.finish_message if candidate is not None else None
        return f"finishReason {finish}" + (": " + excerpt(message, 160) if message else "")
    return None


def _name(value: Any) -> str | None:
    """An enum member's wire name (google-genai may hand back a plain string for a value it does not know)."""
    if value is None:
        return None
    return str(getattr(value, "value", value))
