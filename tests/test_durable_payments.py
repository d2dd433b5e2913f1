"""Durable Stars payments (service level): the charge is stored before anything else, crediting is
retried until it lands, and a refund is an intent recorded before Telegram is asked.

Failures are real database failures: a SQLite trigger makes the one write under test fail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from sqlalchemy import text

from bot.clock import ManualClock
from bot.config import Plan
from bot.db import SessionFactory
from bot.levels import Level
from bot.services.payments import PaymentService
from bot.services.user_levels import LevelService
from bot.services.users import Profile, UserService
from models import PaymentStatus

PLAN = Plan(days=30, stars=250)


async def record(payments: PaymentService, charge_id: str) -> bool:
    return await payments.record(
        1, charge_id=charge_id, provider_charge_id=None, payload=PLAN.payload, currency="XTR", amount=250
    )


async def credit(payments: PaymentService, charge_id: str) -> None:
    await payments.credit(
        1, charge_id=charge_id, provider_charge_id=None, payload=PLAN.payload, currency="XTR", amount=250
    )


@asynccontextmanager
async def failing(sessions: SessionFactory, when: str) -> AsyncIterator[None]:
    """Every UPDATE of a payment matching `when` (SQL on NEW) fails while the block runs."""
    async with sessions.begin() as session:
        await session.execute(
            text(
                f"CREATE TRIGGER fail_payment BEFORE UPDATE ON payments WHEN {when} "
                "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
            )
        )
    try:
        yield
    finally:
        async with sessions.begin() as session:
            await session.execute(text("DROP TRIGGER fail_payment"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> SessionFactory:
    """The same SQL on both databases (tests that inject a failure use SQLite's triggers)."""
    name = "sessions" if request.param == "sqlite" else "pg_sessions"
    sessions: SessionFactory = request.getfixturevalue(name)
    return sessions


async def _setup(sessions: SessionFactory, clock: ManualClock) -> tuple[UserService, PaymentService]:
    users = UserService(sessions, clock, frozenset())
    await users.register(Profile(id=1, first_name="Ann"))
    return users, PaymentService(sessions, users, LevelService(users.rows), (PLAN,), clock)


async def test_a_charge_whose_crediting_fails_is_kept_and_credited_on_retry(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    users, payments = await _setup(sessions, clock)
    assert await record(payments, "c1") is True
    async with failing(sessions, "NEW.status = 'paid'"):
        with pytest.raises(Exception, match="disk I/O error"):
            await payments.credit_charge("c1")
        info = await payments.find("c1")
        assert info is not None and info.status is PaymentStatus.RECEIVED and not info.credited
        assert await payments.uncredited() == ["c1"]
    assert (await users.get(1)).level is Level.USER  # type: ignore[union-attr]

    credit = await payments.credit_charge("c1")  # the retry lands
    assert credit is not None and credit.credited and credit.user.level_until == clock.now() + timedelta(days=30)
    again = await payments.credit_charge("c1")
    assert again is not None and not again.credited
    assert await payments.uncredited() == []
    assert await record(payments, "c1") is False  # the same update again: nothing new


async def test_a_refund_of_a_charge_never_credited_takes_no_days_and_is_never_credited(
    db: SessionFactory, clock: ManualClock
) -> None:
    _users, payments = await _setup(db, clock)
    await credit(payments, "c0")  # 30 days from an earlier payment
    await record(payments, "c1")
    intent = await payments.begin_refund("c1")
    assert intent is not None and intent.status is PaymentStatus.REFUNDING
    assert await payments.uncredited() == []  # a refund is under way: crediting it now would be wrong
    done = await payments.mark_refunded("c1")
    assert done is not None and done[0].days_taken == 0
    assert done[1].level_until == clock.now() + timedelta(days=30)  # c0's days stay
    assert await payments.credit_charge("c1") is not None
    assert (await payments.find("c1")).status is PaymentStatus.REFUNDED  # type: ignore[union-attr]


async def test_a_refused_refund_puts_the_payment_back_as_it_was(db: SessionFactory, clock: ManualClock) -> None:
    _, payments = await _setup(db, clock)
    await credit(payments, "paid")
    await record(payments, "received")
    for charge, before in (("paid", PaymentStatus.PAID), ("received", PaymentStatus.RECEIVED)):
        assert await payments.begin_refund(charge) is not None
        await payments.cancel_refund(charge)
        assert (await payments.find(charge)).status is before  # type: ignore[union-attr]
    assert await payments.uncredited() == ["received"]


async def test_a_refund_whose_record_failed_completes_when_repeated(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    users, payments = await _setup(sessions, clock)
    await credit(payments, "c1")
    assert await payments.begin_refund("c1") is not None
    async with failing(sessions, "NEW.status = 'refunded'"):
        with pytest.raises(Exception, match="disk I/O error"):
            await payments.mark_refunded("c1")
    assert (await payments.find("c1")).status is PaymentStatus.REFUNDING  # type: ignore[union-attr]
    assert await payments.begin_refund("c1") is not None  # asking again is allowed
    done = await payments.mark_refunded("c1")
    assert done is not None and done[0].days_taken == 30 and done[1].level is Level.USER
    assert await payments.mark_refunded("c1") is None
    assert await payments.begin_refund("c1") is None  # refunded: nothing more to ask
    assert (await users.get(1)).level is Level.USER  # type: ignore[union-attr]


async def test_a_refund_made_elsewhere_takes_the_days_back_once(db: SessionFactory, clock: ManualClock) -> None:
    _users, payments = await _setup(db, clock)
    await credit(payments, "c1")
    await credit(payments, "c2")
    done = await payments.mark_refunded("c2")  # Telegram's refunded_payment, no intent recorded
    assert done is not None and done[0].days_taken == 30
    assert done[1].level_until == clock.now() + timedelta(days=30)
    assert await payments.mark_refunded("c2") is None
    assert await payments.mark_refunded("unknown") is None
