"""FLUX.1 Kontext on Replicate: the image-to-image editor behind Gemini.

`black-forest-labs/flux-kontext-pro` (an official model; `KONTEXT_MODEL` may name `-max` or `-dev`)
takes `prompt` (the instruction) and `input_image` (a URL or a data URI), keeps the photo's aspect
ratio with `aspect_ratio: "match_input_image"`, and answers a single output URL. Its
`safety_tolerance` runs 0 (strictest) to 6, at most 2 with an input image; the bot sends 2 or 1 by
SAFETY_LEVEL. The photo goes inline as a data URI: Replicate recommends that below 1 MB, which a
Telegram photo (a JPEG of at most 2560 px a side) usually is.
"""

from __future__ import annotations

from typing import Any

from bot.safety import SafetyLevel

from .base import ProviderImage
from .editing import data_uri
from .replicate_api import ReplicateModel
from .replicate_errors import SAFETY_TOLERANCE

DEFAULT_KONTEXT_MODEL = "black-forest-labs/flux-kontext-pro"


class KontextEditor(ReplicateModel):
    """Edits through Replicate with REPLICATE_API_TOKEN."""

    def __init__(
        self,
        token: str | None,
        base_url: str,
        timeout: float,
        *,
        model: str = DEFAULT_KONTEXT_MODEL,
        safety: SafetyLevel = SafetyLevel.STANDARD,
        **kwargs: Any,
    ) -> None:
        super().__init__(token, base_url, timeout, model=model, **kwargs)
        self._safety = safety

    def can_edit(self) -> bool:
        return self.configured()

    async def edit(self, image: bytes, mime_type: str, instruction: str) -> ProviderImage:
        return await self.run_decoded(kontext_input(image, mime_type, instruction, self._safety))


def kontext_input(image: bytes, mime_type: str, instruction: str, safety: SafetyLevel) -> dict[str, Any]:
    return {
        "prompt": instruction,
        "input_image": data_uri(image, mime_type),
        "aspect_ratio": "match_input_image",
        "output_format": "png",
        "safety_tolerance": SAFETY_TOLERANCE[safety],
    }
