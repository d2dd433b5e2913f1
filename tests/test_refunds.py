"""Refund orchestration (bot.services.refunds) against a real database, with the payment system's
answer chosen by the test: the order of writes is what makes /refund safe to repeat."""

from __future__ import annotations

import pytest

from bot.clock import ManualClock
from bot.config import Plan
from bot.db import SessionFactory
from bot.levels import Level
from bot.services.payments import PaymentService
from bot.services.refunds import (
    RefundAlreadyDone,
    RefundNoAnswer,
    RefundRejected,
    RefundResult,
    RefundService,
)
from bot.services.users import Profile, UserService
from models import PaymentStatus

PLAN = Plan(days=30, stars=250)


class Answers:
    """The payment system: answers each call with the next exception (None = success), and counts."""

    def __init__(self, *answers: Exception | None) -> None:
        self._answers = list(answers)
        self.calls: list[tuple[int, str]] = []

    async def refund(self, user_id: int, charge_id: str) -> None:
        self.calls.append((user_id, charge_id))
        answer = self._answers.pop(0) if self._answers else None
        if answer is not None:
            raise answer


@pytest.fixture
async def setup(sessions: SessionFactory, clock: ManualClock) -> tuple[RefundService, PaymentService, UserService]:
    users = UserService(sessions, clock, frozenset())
    await users.register(Profile(id=1, first_name="Ann"))
    payments = PaymentService(sessions, users, (PLAN,), clock)
    await payments.credit(1, charge_id="c1", provider_charge_id=None, payload=PLAN.payload, currency="XTR", amount=250)
    return RefundService(payments, users), payments, users


async def test_a_refund_takes_the_days_back_and_a_second_is_refused_without_asking(
    setup: tuple[RefundService, PaymentService, UserService],
) -> None:
    refunds, payments, _ = setup
    system = Answers()
    outcome = await refunds.refund("c1", system)
    assert outcome.result is RefundResult.REFUNDED
    assert outcome.payment is not None and outcome.payment.days_taken == 30
    assert outcome.user is not None and outcome.user.level is Level.USER
    assert (await refunds.refund("c1", system)).result is RefundResult.ALREADY
    assert system.calls == [(1, "c1")]  # the second never reached the payment system
    assert (await payments.find("c1")).status is PaymentStatus.REFUNDED  # type: ignore[union-attr]


async def test_unknown_charge_is_never_sent(setup: tuple[RefundService, PaymentService, UserService]) -> None:
    refunds, _, _ = setup
    system = Answers()
    assert (await refunds.refund("nope", system)).result is RefundResult.UNKNOWN
    assert system.calls == []


async def test_no_answer_keeps_the_intent_and_asking_again_finishes(
    setup: tuple[RefundService, PaymentService, UserService],
) -> None:
    refunds, payments, users = setup
    system = Answers(RefundNoAnswer("TelegramNetworkError"), RefundAlreadyDone())
    assert (await refunds.refund("c1", system)).result is RefundResult.NO_ANSWER
    assert (await payments.find("c1")).status is PaymentStatus.REFUNDING  # type: ignore[union-attr]
    assert (await users.get(1)).level is Level.SUBSCRIBER  # type: ignore[union-attr]  # nothing taken yet
    again = await refunds.refund("c1", system)  # "already refunded" from the system counts as done
    assert again.result is RefundResult.REFUNDED and again.payment is not None and again.payment.days_taken == 30
    assert (await users.get(1)).level is Level.USER  # type: ignore[union-attr]


async def test_a_rejected_refund_leaves_the_payment_as_it_was(
    setup: tuple[RefundService, PaymentService, UserService],
) -> None:
    refunds, payments, users = setup
    outcome = await refunds.refund("c1", Answers(RefundRejected("CHARGE_NOT_FOUND")))
    assert outcome.result is RefundResult.REJECTED
    assert (await payments.find("c1")).status is PaymentStatus.PAID  # type: ignore[union-attr]
    assert (await users.get(1)).level is Level.SUBSCRIBER  # type: ignore[union-attr]
