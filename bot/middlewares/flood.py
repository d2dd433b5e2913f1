"""Anti-flood, the first outer middleware: a user over FLOOD_RATE has the update dropped here, before
any database work, with at most one "slow down" notice. Admins (ADMIN_IDS, from the configuration,
not the database) are never limited, nor are updates that must not be lost (payments, membership)."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Chat, TelegramObject, Update
from aiogram.types import User as TgUser
from aiogram.utils.i18n import I18n

from bot.coordination.flood import NOTICE_EVERY, FloodGate, Verdict
from bot.i18n import N_, pick_locale
from bot.middlewares.base import NextHandler

log = logging.getLogger(__name__)

NOTICE = N_("You are sending too fast. Please slow down: I ignore messages for a little while.")


class FloodMiddleware(BaseMiddleware):
    def __init__(self, gate: FloodGate, admin_ids: frozenset[int], i18n: I18n) -> None:
        self._gate = gate
        self._admins = admin_ids
        self._i18n = i18n

    async def __call__(self, handler: NextHandler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: TgUser | None = data.get("event_from_user")
        if user is None or user.id in self._admins or not isinstance(event, Update) or _must_pass(event):
            return await handler(event, data)
        verdict = await self._gate.admit(user.id)
        if verdict is Verdict.PASS:
            return await handler(event, data)
        if verdict is Verdict.NOTIFY:
            log.info("user %s is flooding: updates dropped, one notice per %.0f s", user.id, NOTICE_EVERY)
            await self._notify(event, data, user)
        return None

    async def _notify(self, update: Update, data: dict[str, Any], user: TgUser) -> None:
        text = self._i18n.gettext(NOTICE, locale=pick_locale(user.language_code))
        bot: Bot = data["bot"]
        chat: Chat | None = data.get("event_chat")
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(text, show_alert=True)
            elif chat is not None:
                await bot.send_message(chat.id, text)
        except TelegramAPIError as exc:
            log.debug("flood notice to %s not sent: %s", user.id, type(exc).__name__)


def _must_pass(update: Update) -> bool:
    """Never dropped: a pre-checkout must be answered within seconds, a payment approved has taken the
    money, membership changes are bookkeeping, and a chosen inline result left unhandled would leave
    its message saying "generating" for good (the inline queries typed before it count, and may go)."""
    paid = update.message is not None and update.message.successful_payment is not None
    return bool(update.pre_checkout_query or update.my_chat_member or paid or update.chosen_inline_result)
