"""Last line of defence: log the failure, tell the user briefly, never show exception text."""

from __future__ import annotations

import html
import logging

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import CallbackQuery, ErrorEvent, Message, SuccessfulPayment
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.faults import is_outage
from bot.i18n import pick_locale
from bot.services.errors import AdminProtected, DomainError, UserNotFound
from bot.services.users import UserView
from bot.texts import user_label

log = logging.getLogger(__name__)


def router_factory() -> Router:
    router = Router(name="errors")
    router.errors.register(on_domain_error, ExceptionTypeFilter(DomainError))
    router.errors.register(on_error)
    return router


async def on_domain_error(event: ErrorEvent, i18n_core: I18n, user: UserView | None = None) -> bool:
    """A business rule said no (bot.services.errors): no bug, so no traceback; the sender hears why."""
    exc = event.exception
    log.info("update %s refused: %s", event.update.update_id, exc)
    with i18n_core.context(), i18n_core.use_locale(pick_locale(user.language_code if user else None)):
        text = _domain_text(exc)
    try:
        if event.update.message is not None:
            await event.update.message.answer(text)
        elif event.update.callback_query is not None:
            await _tell_presser(event.update.callback_query, text)
    except Exception as send_exc:
        log.warning("could not report the refusal to the user: %s", type(send_exc).__name__)
    return True


def _domain_text(exc: BaseException) -> str:
    if isinstance(exc, AdminProtected):
        return _("{who} is an admin from ADMIN_IDS and cannot be changed by command.").format(who=user_label(exc.user))
    if isinstance(exc, UserNotFound):
        return _("No such user: {ref}. They must have started the bot.").format(ref=exc.user_id)
    return _("That cannot be done.")


async def on_error(event: ErrorEvent, i18n_core: I18n, user: UserView | None = None) -> bool:
    update = event.update
    payment = update.message.successful_payment if update.message is not None else None
    if payment is not None:
        return await _payment_not_recorded(event, payment, i18n_core, user)
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


async def _payment_not_recorded(
    event: ErrorEvent, payment: SuccessfulPayment, i18n_core: I18n, user: UserView | None
) -> bool:
    """The user paid and the charge could not even be stored: Telegram will not send it again, so the
    log line is its only record. It carries everything needed to credit or refund it by hand."""
    message = event.update.message
    assert message is not None
    payer = message.from_user.id if message.from_user is not None else None  # the payer is the sender
    log.error(
        "PAYMENT NOT RECORDED: charge %s, user %s, %s %s, payload %r (%s); credit or refund it by hand",
        payment.telegram_payment_charge_id,
        payer,
        payment.total_amount,
        payment.currency,
        payment.invoice_payload,
        _name(event),
        exc_info=(type(event.exception), event.exception, event.exception.__traceback__),
    )
    tg_user = message.from_user
    language = user.language_code if user else (tg_user.language_code if tg_user else None)
    with i18n_core.context(), i18n_core.use_locale(pick_locale(language)):
        text = _(
            "Your payment went through, but I could not record it just now. It is not lost: "
            "send /paysupport and quote this payment id: {charge_id}"
        ).format(charge_id=f"<code>{html.escape(payment.telegram_payment_charge_id)}</code>")
    try:
        await message.answer(text)
    except Exception as exc:
        log.warning("could not tell the payer: %s", type(exc).__name__)
    return True


def _name(event: ErrorEvent) -> str:
    return type(event.exception).__name__


async def _tell_presser(query: CallbackQuery, text: str) -> None:
    """An alert if the query is still open; a message if the handler had already answered it.
    `text` is HTML; an alert shows plain text, so it is unescaped there."""
    try:
        await query.answer(html.unescape(text), show_alert=True)
    except TelegramBadRequest:
        if isinstance(query.message, Message):
            await query.message.answer(text)
