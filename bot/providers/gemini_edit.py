"""Gemini's image model as an editor: the instruction and the photo in one `generate_content` call.

google-genai 3.4: `contents=[instruction, types.Part.from_bytes(data=..., mime_type=...)]` sends the
photo as an `inlineData` part next to the text; the edited image comes back like a generated one
(`candidates[0].content.parts[*].inlineData`), and so do refusals (`promptFeedback.blockReason`,
`finishReason IMAGE_SAFETY`...). No aspect ratio is sent: the model keeps the photo's own.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import httpx
from google.genai import errors as genai_errors
from google.genai import types

from bot.timing import elapsed_ms

from .base import ErrorKind, ProviderError, ProviderImage, decode_image
from .gemini import GeminiProvider, safety_settings

log = logging.getLogger(__name__)


class GeminiEditor(GeminiProvider):
    """The configured Gemini image model (GEMINI_IMAGE_MODEL), given a photo to change."""

    def can_edit(self) -> bool:
        return self._key is not None

    async def edit(self, image: bytes, mime_type: str, instruction: str) -> ProviderImage:
        started = time.monotonic()
        if self._key is None:
            raise self._error(ErrorKind.NOT_CONFIGURED, started, detail="no Gemini API key")
        config = types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"], safety_settings=safety_settings(self._safety)
        )
        contents: list[types.PartUnionDict] = [instruction, types.Part.from_bytes(data=image, mime_type=mime_type)]
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._get_client().aio.models.generate_content(
                    model=self._model, contents=contents, config=config
                )
        except genai_errors.APIError as exc:
            raise self._api_error(exc, started) from None
        except TimeoutError:
            raise self._error(ErrorKind.TIMEOUT, started, detail=f"no answer within {self._timeout:g}s") from None
        except ValueError as exc:
            raise self._error(
                ErrorKind.BAD_OUTPUT, started, detail=self._clean(f"{type(exc).__name__}: {exc}")
            ) from None
        except (aiohttp.ClientError, httpx.HTTPError, OSError) as exc:
            raise self._error(
                ErrorKind.UNAVAILABLE, started, detail=self._clean(f"{type(exc).__name__}: {exc}")
            ) from None
        data = self._image_bytes(response, started)
        try:
            edited = await asyncio.to_thread(decode_image, data, self.name, self._model, max_bytes=self._max_bytes)
        except ProviderError as exc:
            exc.latency_ms = elapsed_ms(started)
            log.warning("gemini edit failed: %s", exc)
            raise
        log.info("gemini %s edited in %d ms", self._model, elapsed_ms(started))
        return edited
