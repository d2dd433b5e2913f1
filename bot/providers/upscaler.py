"""×2 upscaling with Real-ESRGAN on Replicate (`nightmareai/real-esrgan`).

A community model, so it runs pinned to a version through `POST /v1/predictions` (`UPSCALE_MODEL`,
`owner/name:version`). Input: `image` (URL or data URI), `scale` (the factor, 0–10, default 4),
`face_enhance` (GFPGAN; off: it repaints faces, which an upscale should not). Output: one URL.
"""

from __future__ import annotations

from typing import Any

from .base import ProviderImage
from .editing import data_uri
from .replicate_api import ReplicateModel

DEFAULT_UPSCALE_MODEL = "nightmareai/real-esrgan:f121d640bd286e1fdc67f9799164c1d5be36ff74576ee11c803ae5b665dd46aa"


class RealEsrganUpscaler(ReplicateModel):
    """Upscales through Replicate with REPLICATE_API_TOKEN; without it there is no upscaler."""

    def __init__(
        self, token: str | None, base_url: str, timeout: float, *, model: str = DEFAULT_UPSCALE_MODEL, **kwargs: Any
    ) -> None:
        super().__init__(token, base_url, timeout, model=model, **kwargs)

    def can_upscale(self) -> bool:
        return self.configured()

    async def upscale(self, image: bytes, mime_type: str, scale: int) -> ProviderImage:
        return await self.run_decoded(upscale_input(image, mime_type, scale))


def upscale_input(image: bytes, mime_type: str, scale: int) -> dict[str, Any]:
    return {"image": data_uri(image, mime_type), "scale": scale, "face_enhance": False}
