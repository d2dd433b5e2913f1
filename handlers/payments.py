"""Subscriptions for Telegram Stars: invoices, pre-checkout, crediting, /paysupport."""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import LabeledPrice, Message, PreCheckoutQuery
from aiogram.utils.i18n import gettext as _

from bot.clock import Clock
from bot.config import Settings
from bot.services.payments import CURRENCY, CheckoutProblem, PaymentService, has_unlimited_access
from bot.services.users import UserView
from bot.texts import credit_text

log = logging.getLogger(__name__)


def router_factory() -> Router:
    router = Router(name="payments")
    router.message.register(on_subscribe, Command("subscribe"))
    router.message.register(on_paysupport, Command("paysupport"))
    router.pre_checkout_query.register(on_pre_checkout)
    router.message.register(on_successful_payment, F.successful_payment)
    router.message.register(on_refunded_payment, F.refunded_payment)
    return router


async def on_subscribe(message: Message, payments: PaymentService, user: UserView) -> None:
    if not payments.enabled:
        await message.answer(_("Subscriptions are not on sale in this bot right now."))
        return
    if has_unlimited_access(user):
        await message.answer(_("You already have every model with no end date: there is nothing to buy."))
        return
    for plan in payments.plans:
        await message.answer_invoice(
            title=_("Subscriber for {days} days").format(days=plan.days),
            description=_("FLUX Pro and a higher daily limit for {days} days.").format(days=plan.days),
            payload=plan.payload,
            currency=CURRENCY,
            prices=[LabeledPrice(label=_("{days} days").format(days=plan.days), amount=plan.stars)],
        )


async def on_pre_checkout(query: PreCheckoutQuery, payments: PaymentService) -> None:
    problem = await payments.check(query.from_user.id, query.invoice_payload, query.currency, query.total_amount)
    if problem is None:
        await query.answer(ok=True)
        return
    reasons = {
        CheckoutProblem.UNKNOWN_PLAN: _("This offer is no longer available. Send /subscribe for the current one."),
        CheckoutProblem.WRONG_AMOUNT: _("The price has changed. Send /subscribe for the current offer."),
        CheckoutProblem.UNKNOWN_USER: _("Please send /start first."),
        CheckoutProblem.BANNED: _("Payments are not available for this account."),
        CheckoutProblem.ALREADY_UNLIMITED: _("You already have every model with no end date: there is nothing to buy."),
    }
    log.info("pre-checkout refused for %s: %s", query.from_user.id, problem.value)
    await query.answer(ok=False, error_message=reasons[problem])


async def on_successful_payment(message: Message, payments: PaymentService, clock: Clock) -> None:
    """Store the charge first (its own idempotent step), then add its days. If the first step fails the
    error handler logs the charge at ERROR; if the second fails the crediting loop finishes it."""
    payment = message.successful_payment
    if payment is None or message.from_user is None:
        return
    charge_id = payment.telegram_payment_charge_id
    await payments.record(
        message.from_user.id,
        charge_id=charge_id,
        provider_charge_id=payment.provider_payment_charge_id,
        payload=payment.invoice_payload,
        currency=payment.currency,
        amount=payment.total_amount,
    )
    try:
        credit = await payments.credit_charge(charge_id)
    except Exception as exc:
        log.warning(
            "payment %s stored; crediting failed (%s): the crediting loop retries it", charge_id, type(exc).__name__
        )
        await message.answer(
            _("Payment received. Your days will be added within a few minutes; I will write when they are.")
        )
        return
    if credit is None or not credit.credited:
        return  # the same update again, or the crediting loop got there first: already thanked
    if credit.plan is None:
        log.error("payment %s for an unknown plan %r", charge_id, payment.invoice_payload)
    await message.answer(credit_text(credit, clock.tz))


async def on_refunded_payment(message: Message, payments: PaymentService) -> None:
    """Telegram says a payment was refunded: by our /refund (already recorded: nothing to do) or
    elsewhere (support, a dispute). The days it added go; Telegram's own message tells the user."""
    refund = message.refunded_payment
    if refund is None:
        return
    charge_id = refund.telegram_payment_charge_id
    done = await payments.mark_refunded(charge_id)
    if done is not None:
        info, user = done
        log.info("payment %s refunded by Telegram: %s day(s) taken back from %s", charge_id, info.days_taken, user.id)
    elif await payments.find(charge_id) is None:
        log.warning("refund of a payment never recorded: %s, %s %s", charge_id, refund.total_amount, refund.currency)


async def on_paysupport(message: Message, settings: Settings) -> None:
    contact = settings.paysupport_contact
    text = _(
        "Payment questions: describe the problem and include the date of the payment. "
        "Refunds are possible for unused subscriptions."
    )
    if contact:
        text += "\n" + _("Contact: {contact}").format(contact=contact)
    await message.answer(text, parse_mode=None)
