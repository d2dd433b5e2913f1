"""Last line of defence: log the failure, tell the user briefly, never show exception text."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, ErrorEvent, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.faults import is_outage
from bot.i18n import pick_locale
from bot.services.users import UserView

log = logging.getLogger(__name__)


def router_factory() -> Router:
    router = Router(name="errors")
    router.errors.register(on_error)
    return router


async def on_error(event: ErrorEvent, i18n_core: I18n, user: UserView | None = None) -> bool:
    update = event.update
    outage = is_outage(event.exception)
    if outage:  # expected while a server restarts: one line, no traceback
        log.warning("update %s not handled: %s (database or Redis unreachable)", update.update_id, _name(event))
    else:
        log.error(
            "update %s failed: %s",
            update.update_id,
            _name(event),
            exc_info=(type(event.exception), event.exception, event.exception.__traceback__),
        )
    # Error handlers run outside the locale middleware, so the locale is set here again.
    with i18n_core.context(), i18n_core.use_locale(pick_locale(user.language_code if user else None)):
        if outage:
            text = _("I'm busy right now. Nothing was charged — please try again in a minute.")
        else:
            text = _("Something went wrong on my side. Please try again in a moment.")
    try:
        if update.message is not None:
            await update.message.answer(text)
        elif update.callback_query is not None:
            await _tell_presser(update.callback_query, text)
    except Exception as exc:  # the chat may be gone; nothing more to do
        log.warning("could not report the error to the user: %s", type(exc).__name__)
    return True


def _name(event: ErrorEvent) -> str:
    return type(event.exception).__name__


async def _tell_presser(query: CallbackQuery, text: str) -> None:
    """An alert if the query is still open; a message if the handler had already answered it."""
    try:
        await query.answer(text, show_alert=True)
    except TelegramBadRequest:
        if isinstance(query.message, Message):
            await query.message.answer(text)
