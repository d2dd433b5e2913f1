"""The interface for models that change a given image: an instruction-following editor, an upscaler.

Kept apart from `ImageProvider` (text to image): an edit has an input photo and no product model of
its own, so the chain of bot.catalog does not apply; bot.services.editing keeps its own short chain.
"""

from __future__ import annotations

import base64
from typing import Protocol

from .base import ProviderImage


class ImageEditor(Protocol):
    """Changes `image` as `instruction` says; raises ProviderError (ErrorKind.REFUSED is final)."""

    name: str

    def can_edit(self) -> bool:
        """True when the keys this editor needs are present."""
        ...

    async def edit(self, image: bytes, mime_type: str, instruction: str) -> ProviderImage: ...

    async def aclose(self) -> None: ...


class ImageUpscaler(Protocol):
    """Enlarges `image` `scale` times; raises ProviderError."""

    name: str

    def can_upscale(self) -> bool: ...

    async def upscale(self, image: bytes, mime_type: str, scale: int) -> ProviderImage: ...

    async def aclose(self) -> None: ...


def data_uri(data: bytes, mime_type: str) -> str:
    """How Replicate (and huggingface_hub's image-to-image) take a file inline: no upload step."""
    return f"data:{mime_type};base64,{base64.b64encode(data).decode('ascii')}"
