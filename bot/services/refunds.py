"""Refunding a Stars payment: the order of writes and calls that makes /refund safe to repeat.

The intent is recorded before the payment system is asked, so a refund whose outcome was never written
is finished by asking again (the system then says it was refunded already, which counts as done).
The call itself goes through a `Refunder`, so this module knows no aiogram and tests can say anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.services.payments import PaymentInfo, PaymentService
from bot.services.user_view import UserView
from bot.services.users import UserService
from models import PaymentStatus

log = logging.getLogger(__name__)


class RefundAlreadyDone(Exception):
    """The payment system says this charge was refunded before: for us, the refund is done."""


class RefundNoAnswer(Exception):
    """No answer (network, 5xx): the refund may or may not have happened; the intent stays."""


class RefundRejected(Exception):
    """The payment system said no; `reason` is its own words, for the log only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Refunder(Protocol):
    async def refund(self, user_id: int, charge_id: str) -> None:
        """Give the charge back, or raise one of the three errors above."""
        ...


class RefundResult(StrEnum):
    REFUNDED = "refunded"  # done now; `payment` and `user` say what was taken back
    UNKNOWN = "unknown"  # no payment with that charge id
    ALREADY = "already"  # refunded before
    NO_ANSWER = "no_answer"  # ask again: it is safe
    REJECTED = "rejected"  # nothing changed
    NOT_RECORDED = "not_recorded"  # refunded, but writing it failed: ask again to finish


@dataclass(frozen=True, slots=True)
class RefundOutcome:
    result: RefundResult
    payment: PaymentInfo | None = None
    user: UserView | None = None


class RefundService:
    def __init__(self, payments: PaymentService, users: UserService) -> None:
        self._payments = payments
        self._users = users

    async def refund(self, charge_id: str, refunder: Refunder) -> RefundOutcome:
        payment = await self._payments.find(charge_id)
        if payment is None:
            return RefundOutcome(RefundResult.UNKNOWN)
        if payment.status is PaymentStatus.REFUNDED or await self._payments.begin_refund(charge_id) is None:
            return RefundOutcome(RefundResult.ALREADY)
        try:
            await refunder.refund(payment.user_id, charge_id)
        except RefundAlreadyDone:
            log.info("refund of %s: already refunded; recording it", charge_id)
        except RefundNoAnswer as exc:
            log.warning("refund of %s: no answer (%s); the intent stays", charge_id, exc)
            return RefundOutcome(RefundResult.NO_ANSWER)
        except RefundRejected as exc:
            await self._payments.cancel_refund(charge_id)  # back as it was
            log.warning("refund of %s refused: %s", charge_id, exc.reason)
            return RefundOutcome(RefundResult.REJECTED)
        try:
            done = await self._payments.mark_refunded(charge_id)
        except Exception:
            log.exception("refund of %s done but not recorded; the intent stays", charge_id)
            return RefundOutcome(RefundResult.NOT_RECORDED)
        if done is None:  # the payment system's own refund notice was handled first
            refunded, user = await self._payments.find(charge_id), await self._users.get(payment.user_id)
            if refunded is None or user is None:
                return RefundOutcome(RefundResult.ALREADY)
            return RefundOutcome(RefundResult.REFUNDED, refunded, user)
        info, user = done
        return RefundOutcome(RefundResult.REFUNDED, info, user)
