"""Several images of one prompt as one album (sendMediaGroup), the caption on its first item.

An album goes whole or not at all, so it is sent only when every image fits Telegram's photo rules;
otherwise, or when Telegram refuses the album (400), the caller sends the images one by one (as
documents where needed). 5xx and network errors are retried like a single photo; when they persist
the error goes to the caller: nothing reached the chat, and every unit comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    BufferedInputFile,
    InputMediaAudio,
    InputMediaDocument,
    InputMediaLivePhoto,
    InputMediaPhoto,
    InputMediaVideo,
    Message,
)

from bot.send_retry import with_retries
from bot.services.generation import GeneratedImage

log = logging.getLogger(__name__)

ALBUM_MAX = 10  # Telegram's limit per media group


async def send_album(bot: Bot, chat_id: int, images: Sequence[GeneratedImage], caption: str) -> list[Message] | None:
    """The sent messages in order, or None when the images must go one by one instead."""
    if not 2 <= len(images) <= ALBUM_MAX:
        return None
    media: list[InputMediaAudio | InputMediaDocument | InputMediaLivePhoto | InputMediaPhoto | InputMediaVideo] = [
        InputMediaPhoto(
            media=BufferedInputFile(image.data, filename=f"image{index}.{_extension(image)}"),
            caption=caption if index == 0 else None,
        )
        for index, image in enumerate(images)
    ]
    try:
        return await with_retries(lambda: bot.send_media_group(chat_id, media=media))
    except TelegramBadRequest as exc:
        log.warning("album rejected (%s); sending the images one by one", exc.message[:100])
        return None


def _extension(image: GeneratedImage) -> str:
    return image.mime_type.rsplit("/", 1)[-1].replace("jpeg", "jpg")
