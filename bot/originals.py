"""Which delivered images need their untouched bytes kept for "📎 Original" (bot/services/originals.py).

A photo is re-encoded by Telegram, and its file id cannot be sent as a document: its provider bytes
are kept. An image that went as a document is the untouched file already; its file id is enough.
"""

from __future__ import annotations

from aiogram.types import Message

from bot.services.generation import GenerationResult
from bot.services.originals import NewOriginal


def originals_to_keep(messages: list[Message], result: GenerationResult) -> list[NewOriginal]:
    """The provider's bytes of each image delivered as a photo; `messages` follow the result's order."""
    return [
        NewOriginal(position, image.data, image.mime_type)
        for position, (message, image) in enumerate(zip(messages, result.images, strict=False))
        if message.photo
    ]


def document_name(generation_id: int, position: int, mime_type: str) -> str:
    """`image-<generation>-<n>.<ext>`, the extension from the original's own format."""
    subtype = mime_type.partition("/")[2].split(";")[0].strip().lower()
    extension = "jpg" if subtype == "jpeg" else "".join(c for c in subtype if c.isalnum())[:8] or "bin"
    return f"image-{generation_id}-{position + 1}.{extension}"
