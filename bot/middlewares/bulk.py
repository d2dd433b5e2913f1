"""Marks the updates that start generations as bulk work (see `bot.bulk`), so a crowd of prompts
takes only a few database connections and a command sent meanwhile is answered at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

from bot.bulk import bulk_work


class BulkUpdates(BaseMiddleware):
    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not starts_work(event):
            return await handler(event, data)
        with bulk_work():
            return await handler(event, data)


def starts_work(event: TelegramObject) -> bool:
    """A message that is not a command: a prompt (or text for a prompt-like step) or a photo.
    Commands, buttons, payments and membership changes stay out of the crowd's line."""
    if not isinstance(event, Update) or event.message is None:
        return False
    message = event.message
    if message.text is not None:
        return not message.text.startswith("/")
    return message.photo is not None
