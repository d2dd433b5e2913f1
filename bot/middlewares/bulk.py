"""Marks the updates that start generations as bulk work (see `bot.bulk`), so a crowd of prompts
takes only a few database connections and a command sent meanwhile is answered at once.

A prompt may then wait its turn for a moment; it is acknowledged first with a chat action, which
Telegram shows at once ("sending a photo…") and which no send limit delays. At most `ACKS_AT_ONCE`
acknowledgements are in flight: 500 of them at once would hold every connection of the bot's HTTP
session and leave a command's reply queued behind them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.enums import ChatAction, ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Message, TelegramObject, Update

from bot.bulk import bulk_work
from bot.middlewares.base import NextHandler

log = logging.getLogger(__name__)

ACKS_AT_ONCE = 32


class BulkUpdates(BaseMiddleware):
    def __init__(self, menu_texts: frozenset[str] = frozenset()) -> None:
        self._menu_texts = menu_texts
        self._acks = asyncio.Semaphore(ACKS_AT_ONCE)

    async def __call__(self, handler: NextHandler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, Update) and event.chosen_inline_result is not None:
            with bulk_work():  # a prompt sent from another chat (inline mode): no chat here to acknowledge in
                return await handler(event, data)
        prompt = self.prompt_of(event)
        if prompt is None:
            return await handler(event, data)
        async with self._acks:
            await _acknowledge(data["bot"], prompt)
        with bulk_work():
            return await handler(event, data)

    def prompt_of(self, event: TelegramObject) -> Message | None:
        """A private text that is neither a command nor a menu button: a prompt (or text for a
        prompt-like step). Commands, buttons, payments and membership changes stay out of the line."""
        if not isinstance(event, Update) or event.message is None:
            return None
        message = event.message
        if message.chat.type != ChatType.PRIVATE or not message.text:
            return None
        if message.text.startswith("/") or message.text in self._menu_texts:
            return None
        return message


async def _acknowledge(bot: Bot, message: Message) -> None:
    try:
        await bot.send_chat_action(
            message.chat.id, ChatAction.UPLOAD_PHOTO, message_thread_id=message.message_thread_id
        )
    except TelegramAPIError as exc:  # a nicety: the prompt is handled all the same
        log.debug("chat action for %s not shown: %s", message.chat.id, type(exc).__name__)
