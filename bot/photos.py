"""Bounds on a user's photo, checked from what Telegram says about it before a byte is downloaded.

A handler picks the largest PhotoSize within the bounds of the job (Telegram offers several sizes of
every photo); the worker checks the `file_size` getFile reports and cuts the download at the cap, and
the bytes are decoded within the provider caps (bot/providers/limits.py) before any model sees them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from aiogram import Bot
from aiogram.types import PhotoSize
from PIL import Image, UnidentifiedImageError

from bot.providers.limits import MAX_PIXELS, TooLarge, check_pixels
from models import JobKind

# Telegram itself takes photos of at most 10 MB; the Bot API serves downloads of up to 20 MB.
PHOTO_MAX_BYTES = 10 * 1024 * 1024
# An upscale doubles each side: at most 1280×1280 in (Telegram's 1280 px size of any photo fits) keeps
# the result within 2560 px a side, and its PNG within PROVIDER_MAX_BYTES' default of 20 MB.
UPSCALE_MAX_PIXELS = 1280 * 1280


def max_pixels(kind: JobKind) -> int:
    return UPSCALE_MAX_PIXELS if kind is JobKind.UPSCALE else MAX_PIXELS


def pick_photo(sizes: Sequence[PhotoSize] | None, kind: JobKind) -> PhotoSize | None:
    """The largest size within the byte and pixel caps for `kind`, or None when every size is over."""
    cap = max_pixels(kind)
    fitting = [
        size
        for size in sizes or ()
        if size.width * size.height <= cap and (size.file_size is None or size.file_size <= PHOTO_MAX_BYTES)
    ]
    return max(fitting, key=lambda size: size.width * size.height, default=None)


# --- describe (issue 11): the photo a vision model looks at ---------------------------------------

VISION_SIDE = 1280  # larger photos add bytes, not detail a vision model uses
DOWNLOAD_SECONDS = 60
MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


class PhotoRejected(Exception):
    """The photo cannot be looked at: `too_large` (over a cap) or `unreadable` (not an image we know)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


def pick_vision_photo(sizes: Sequence[PhotoSize] | None, max_bytes: int) -> PhotoSize | None:
    """The largest size up to VISION_SIDE within the caps, else the smallest within them; None if none is."""
    fitting = [
        s for s in sizes or () if s.width * s.height <= MAX_PIXELS and (s.file_size is None or s.file_size <= max_bytes)
    ]
    if not fitting:
        return None
    modest = [s for s in fitting if max(s.width, s.height) <= VISION_SIDE]
    if modest:
        return max(modest, key=lambda s: s.width * s.height)
    return min(fitting, key=lambda s: s.width * s.height)


async def download_photo(bot: Bot, file_id: str, max_bytes: int) -> tuple[bytes, str]:
    """The photo's bytes and MIME type; PhotoRejected when a cap is passed or it is not an image.

    getFile's file_size is checked before a byte is read, the body is cut at the cap as it streams,
    and the pixel size is read from the header (no pixel decoded) before any model sees it."""
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
        with Image.open(io.BytesIO(data)) as image:
            check_pixels(*image.size)
            mime = MIME_TYPES.get(image.format or "")
    except (TooLarge, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoRejected("too_large", str(exc)) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PhotoRejected("unreadable", type(exc).__name__) from None
    if mime is None:
        raise PhotoRejected("unreadable", "unsupported image format")
    return data, mime
