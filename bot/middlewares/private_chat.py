"""Stamps a user's first private message (bot/services/private_chats.py): from then on inline mode
may upload their images to that chat. Runs on messages only, after the user is registered."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import BaseMiddleware
from aiogram.enums import ChatType
from aiogram.types import Message, TelegramObject

from bot.faults import is_outage
from bot.middlewares.base import NextHandler
from bot.services.private_chats import PrivateChats

log = logging.getLogger(__name__)


class PrivateChatMiddleware(BaseMiddleware):
    def __init__(self, chats: PrivateChats) -> None:
        self._chats = chats

    async def __call__(self, handler: NextHandler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if (
            isinstance(event, Message)
            and event.chat.type == ChatType.PRIVATE
            and event.from_user is not None
            and (user := data.get("user")) is not None
            and not user.private_chat  # stamped already: the row read for this update says so
        ):
            try:
                await self._chats.note(event.from_user.id)
            except Exception as exc:  # a nicety for inline mode: the message itself is handled all the same
                if not is_outage(exc):
                    raise
                log.warning("private chat of %s not stamped: %s", event.from_user.id, type(exc).__name__)
        return await handler(event, data)
