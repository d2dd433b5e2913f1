"""Payments stored but never credited (the database failed between the two steps) get their days
here: at start-up and then every minute, on one instance at a time (a lease), until it lands.

Crediting flips the row once, so whoever flips it (this loop or the payment's own handler) is the
one who thanks the payer.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.utils.i18n import I18n

from bot.clock import Clock
from bot.i18n import pick_locale
from bot.services.audience import AudienceService
from bot.services.payments import PaymentService
from bot.texts import credit_text

log = logging.getLogger(__name__)

CREDIT_EVERY_SECONDS = 60.0


class PaymentCrediting:
    def __init__(self, bot: Bot, payments: PaymentService, audience: AudienceService, i18n: I18n, clock: Clock) -> None:
        self._bot = bot
        self._payments = payments
        self._audience = audience
        self._i18n = i18n
        self._clock = clock

    async def run(self) -> int:
        """One round; returns how many charges were credited. A charge that fails again waits for the next."""
        credited = 0
        for charge_id in await self._payments.uncredited():
            try:
                credit = await self._payments.credit_charge(charge_id)
            except Exception as exc:
                log.warning("crediting payment %s failed again: %s; retrying later", charge_id, type(exc).__name__)
                continue
            if credit is None or not credit.credited:
                continue  # the handler, a refund or another round got there first
            credited += 1
            log.info("payment %s credited late to user %s", charge_id, credit.user.id)
            with self._i18n.context(), self._i18n.use_locale(pick_locale(credit.user.language_code)):
                text = credit_text(credit, self._clock.tz)
            await self._tell(credit.user.id, text)
        return credited

    async def _tell(self, user_id: int, text: str) -> None:
        try:
            await self._bot.send_message(user_id, text)
        except TelegramForbiddenError:
            await self._audience.set_blocked(user_id, True)
        except TelegramAPIError as exc:
            log.info("late payment notice to %s failed: %s", user_id, type(exc).__name__)
