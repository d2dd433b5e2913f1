"""Banned users: one notice, then their updates are dropped before any handler sees them."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, TelegramObject, Update
from aiogram.utils.i18n import gettext as _

from bot.middlewares.base import NextHandler
from bot.services.bans import BanService
from bot.services.user_view import UserView

log = logging.getLogger(__name__)


class BanMiddleware(BaseMiddleware):
    def __init__(self, bans: BanService) -> None:
        self._bans = bans

    async def __call__(self, handler: NextHandler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: UserView | None = data.get("user")
        if user is None or not user.is_banned:
            return await handler(event, data)
        if _must_pass(event):
            return await handler(event, data)
        if isinstance(event, Update) and event.callback_query is not None:
            await _stop_spinner(event.callback_query)
        if not user.ban_notified and await self._bans.claim_ban_notice(user.id):
            bot: Bot = data["bot"]
            try:
                await bot.send_message(user.id, _("You can no longer use this bot."))
            except TelegramAPIError as exc:
                log.info("ban notice to %s failed: %s", user.id, type(exc).__name__)
        return None


async def _stop_spinner(query: CallbackQuery) -> None:
    """An empty answer: the button stops spinning, and the banned user learns nothing new."""
    try:
        await query.answer()
    except TelegramAPIError as exc:
        log.debug("callback of a banned user not answered: %s", type(exc).__name__)


def _must_pass(event: TelegramObject) -> bool:
    """Updates a ban must not swallow: a pre-checkout must still be answered (and is refused there),
    a payment approved before the ban has taken the money and must be recorded (a refund, its days
    taken back), and membership changes are bookkeeping."""
    if not isinstance(event, Update):
        return False
    message = event.message
    paid = message is not None and (message.successful_payment is not None or message.refunded_payment is not None)
    return bool(event.pre_checkout_query or event.my_chat_member or paid)
