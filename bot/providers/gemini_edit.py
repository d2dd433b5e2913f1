"""Gemini's image model as an editor: the instruction and the photo in one `generate_content` call.

google-genai 3.4: `contents=[instruction, types.Part.from_bytes(data=..., mime_type=...)]` sends the
photo as an `inlineData` part next to the text; the edited image comes back like a generated one
(`candidates[0].content.parts[*].inlineData`), and so do refusals (`promptFeedback.blockReason`,
`finishReason IMAGE_SAFETY`...). No aspect ratio is sent: the model keeps the photo's own.
"""

from __future__ import annotations

import logging
import time

from bot.timing import elapsed_ms

from .base import ErrorKind, ProviderImage
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
        from google.genai import types  # at first use, like GeminiProvider's

        config = types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"], safety_settings=safety_settings(self._safety)
        )
        contents: list[types.PartUnionDict] = [instruction, types.Part.from_bytes(data=image, mime_type=mime_type)]
        edited = await self._call(contents, config, started)
        log.info("gemini %s edited in %d ms", self._model, elapsed_ms(started))
        return edited
