"""A user's photo, fetched from Telegram within the providers' caps (bot/providers/limits.py).

Bounded before download, at both ends: the handler picks a PhotoSize whose reported width, height
and file_size are within the caps (`pick_photo`), and the worker checks getFile's file_size before
reading, streams the body with a byte cap, and reads the pixel size from the header before any
model sees it (`download_photo`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from aiogram import Bot
from aiogram.types import PhotoSize
from PIL import Image, UnidentifiedImageError

from bot.providers.limits import MAX_PIXELS, TooLarge, check_pixels

VISION_SIDE = 1280  # larger photos add bytes, not detail a vision model uses
DOWNLOAD_SECONDS = 60
MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


class PhotoRejected(Exception):
    """The photo cannot be looked at: `too_large` (over a cap) or `unreadable` (not an image we know)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


def pick_photo(sizes: Sequence[PhotoSize], max_bytes: int) -> PhotoSize | None:
    """The largest size up to VISION_SIDE within the caps, else the smallest within them; None if none is."""
    fitting = [
        s for s in sizes if s.width * s.height <= MAX_PIXELS and (s.file_size is None or s.file_size <= max_bytes)
    ]
    if not fitting:
        return None
    modest = [s for s in fitting if max(s.width, s.height) <= VISION_SIDE]
    if modest:
        return max(modest, key=lambda s: s.width * s.height)
    return min(fitting, key=lambda s: s.width * s.height)


async def download_photo(bot: Bot, file_id: str, max_bytes: int) -> tuple[bytes, str]:
    """The photo's bytes and MIME type; PhotoRejected when a cap is passed or it is not an image."""
    file = await bot.get_file(file_id)
    if file.file_size is not None and file.file_size > max_bytes:
        raise PhotoRejected("too_large", f"{file.file_size} bytes over the {max_bytes}-byte cap")
    if not file.file_path:
        raise PhotoRejected("unreadable", "no file_path")
    url = bot.session.api.file_url(bot.token, file.file_path)
    body = bytearray()
    async for chunk in bot.session.stream_content(url, timeout=DOWNLOAD_SECONDS, raise_for_status=True):
        body += chunk
        if len(body) > max_bytes:
            raise PhotoRejected("too_large", f"body over the {max_bytes}-byte cap")
    data = bytes(body)
    try:
        with Image.open(io.BytesIO(data)) as image:  # the header only: no pixel is decoded here
            check_pixels(*image.size)
            mime = MIME_TYPES.get(image.format or "")
    except (TooLarge, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoRejected("too_large", str(exc)) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PhotoRejected("unreadable", type(exc).__name__) from None
    if mime is None:
        raise PhotoRejected("unreadable", "unsupported image format")
    return data, mime
