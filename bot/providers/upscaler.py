"""×2 upscaling with Real-ESRGAN on Replicate (`nightmareai/real-esrgan`).

A community model, so it runs pinned to a version through `POST /v1/predictions` (`UPSCALE_MODEL`,
`owner/name:version`). Input: `image` (URL or data URI), `scale` (the factor, 0–10, default 4),
`face_enhance` (GFPGAN; off: it repaints faces, which an upscale should not). Output: one URL.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from .base import ProviderImage, decode_off_loop
from .editing import data_uri
from .limits import DEFAULT_MAX_BYTES
from .replicate_api import ReplicateRunner

DEFAULT_UPSCALE_MODEL = "nightmareai/real-esrgan:f121d640bd286e1fdc67f9799164c1d5be36ff74576ee11c803ae5b665dd46aa"


class RealEsrganUpscaler:
    """Upscales through Replicate with REPLICATE_API_TOKEN; without it there is no upscaler."""

    name = "replicate"

    def __init__(
        self,
        token: str | None,
        base_url: str,
        timeout: float,
        *,
        model: str = DEFAULT_UPSCALE_MODEL,
        max_bytes: int = DEFAULT_MAX_BYTES,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self._max_bytes = max_bytes
        self.runner = ReplicateRunner(self.name, token, base_url, timeout, max_bytes, http=http)

    def can_upscale(self) -> bool:
        return self.runner.token is not None

    async def upscale(self, image: bytes, mime_type: str, scale: int) -> ProviderImage:
        started = time.monotonic()
        data = await self.runner.run(self.model, upscale_input(image, mime_type, scale))
        label = self.model.split(":", 1)[0]
        return await decode_off_loop(data, self.name, label, started, max_bytes=self._max_bytes)

    async def aclose(self) -> None:
        await self.runner.aclose()


def upscale_input(image: bytes, mime_type: str, scale: int) -> dict[str, Any]:
    return {"image": data_uri(image, mime_type), "scale": scale, "face_enhance": False}
