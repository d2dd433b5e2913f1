"""Bounds on a user's photo, checked from what Telegram says about it before a byte is downloaded.

A handler picks the largest PhotoSize within the bounds of the job (Telegram offers several sizes of
every photo); the worker checks the `file_size` getFile reports and cuts the download at the cap, and
the bytes are decoded within the provider caps (bot/providers/limits.py) before any model sees them.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import PhotoSize

from bot.providers.limits import MAX_PIXELS
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
