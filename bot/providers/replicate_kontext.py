"""FLUX.1 Kontext on Replicate: the image-to-image editor behind Gemini.

`black-forest-labs/flux-kontext-pro` (an official model; `KONTEXT_MODEL` may name `-max` or `-dev`)
takes `prompt` (the instruction) and `input_image` (a URL or a data URI), keeps the photo's aspect
ratio with `aspect_ratio: "match_input_image"`, and answers a single output URL. Its
`safety_tolerance` runs 0 (strictest) to 6, at most 2 with an input image; the bot sends 2 or 1 by
SAFETY_LEVEL. The photo goes inline as a data URI: Replicate recommends that below 1 MB, which a
Telegram photo (a JPEG of at most 2560 px a side) usually is.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from bot.safety import SafetyLevel

from .base import ProviderImage, decode_off_loop
from .editing import data_uri
from .limits import DEFAULT_MAX_BYTES
from .replicate_api import ReplicateRunner
from .replicate_errors import SAFETY_TOLERANCE

DEFAULT_KONTEXT_MODEL = "black-forest-labs/flux-kontext-pro"


class KontextEditor:
    """Edits through Replicate with REPLICATE_API_TOKEN."""

    name = "replicate"

    def __init__(
        self,
        token: str | None,
        base_url: str,
        timeout: float,
        *,
        model: str = DEFAULT_KONTEXT_MODEL,
        safety: SafetyLevel = SafetyLevel.STANDARD,
        max_bytes: int = DEFAULT_MAX_BYTES,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self._safety = safety
        self._max_bytes = max_bytes
        self.runner = ReplicateRunner(self.name, token, base_url, timeout, max_bytes, http=http)

    def can_edit(self) -> bool:
        return self.runner.token is not None

    async def edit(self, image: bytes, mime_type: str, instruction: str) -> ProviderImage:
        started = time.monotonic()
        data = await self.runner.run(self.model, kontext_input(image, mime_type, instruction, self._safety))
        return await decode_off_loop(data, self.name, self.model, started, max_bytes=self._max_bytes)

    async def aclose(self) -> None:
        await self.runner.aclose()


def kontext_input(image: bytes, mime_type: str, instruction: str, safety: SafetyLevel) -> dict[str, Any]:
    return {
        "prompt": instruction,
        "input_image": data_uri(image, mime_type),
        "aspect_ratio": "match_input_image",
        "output_format": "png",
        "safety_tolerance": SAFETY_TOLERANCE[safety],
    }
