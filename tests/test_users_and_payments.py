"""Levels with expiry, bans, and exactly-once Stars crediting and refunds (service level)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.clock import ManualClock
from bot.config import Plan
from bot.db import SessionFactory
from bot.levels import Level
from bot.services.errors import AdminProtected, UserNotFound
from bot.services.payments import CheckoutProblem, PaymentService
from bot.services.users import Profile, UserService
from models import User

PLAN = Plan(days=30, stars=250)


async def _users(sessions: SessionFactory, clock: ManualClock, admins: frozenset[int] = frozenset()) -> UserService:
    users = UserService(sessions, clock, admins)
    await users.register(Profile(id=1, first_name="Ann", username="ann", language_code="ru"))
    await users.register(Profile(id=2, first_name="Root"))
    return users


async def test_register_refreshes_profile_and_keeps_level(sessions: SessionFactory, clock: ManualClock) -> None:
    users = await _users(sessions, clock)
    await users.set_level(1, Level.SUBSCRIBER)
    view = await users.register(Profile(id=1, first_name="Anna", username="anna"))
    assert (view.first_name, view.username, view.level) == ("Anna", "anna", Level.SUBSCRIBER)
    assert (await users.find("@ANNA")) is not None and (await users.find("1")) is not None
    assert await users.find("@nobody") is None


async def test_timed_level_returns_to_user_by_itself(sessions: SessionFactory, clock: ManualClock) -> None:
    users = await _users(sessions, clock)
    view = await users.set_level(1, Level.SUBSCRIBER, days=3)
    assert view.level is Level.SUBSCRIBER and view.level_until == clock.now() + timedelta(days=3)
    clock.advance(timedelta(days=3, seconds=1))
    assert (await users.get(1)).level is Level.USER  # type: ignore[union-attr]
    assert await users.expire_levels() == [(1, Level.SUBSCRIBER)]
    assert await users.expire_levels() == []


async def test_admin_ids_cannot_be_demoted_or_banned(sessions: SessionFactory, clock: ManualClock) -> None:
    users = await _users(sessions, clock, admins=frozenset({2}))
    assert (await users.get(2)).level is Level.ADMIN  # type: ignore[union-attr]
    with pytest.raises(AdminProtected) as demoted:
        await users.set_level(2, Level.USER)
    assert demoted.value.user.id == 2
    with pytest.raises(AdminProtected):
        await users.set_ban(2, True)
    assert (await users.get(2)).is_banned is False  # type: ignore[union-attr]
    with pytest.raises(UserNotFound) as missing:
        await users.set_ban(404, True)
    assert missing.value.user_id == 404


async def test_expiry_warning_is_due_once_per_end_date(sessions: SessionFactory, clock: ManualClock) -> None:
    users = await _users(sessions, clock)
    view = await users.set_level(1, Level.SUBSCRIBER, days=3)
    assert await users.expiring_soon(timedelta(days=1)) == []
    clock.advance(timedelta(days=2, hours=1))
    [due] = await users.expiring_soon(timedelta(days=1))
    assert due.id == 1
    assert await users.claim_expiry_warning(1, view.level_until) is True  # type: ignore[arg-type]
    assert await users.claim_expiry_warning(1, view.level_until) is False  # type: ignore[arg-type]
    assert await users.expiring_soon(timedelta(days=1)) == []


async def test_pre_checkout_checks(sessions: SessionFactory, clock: ManualClock) -> None:
    users = await _users(sessions, clock)
    payments = PaymentService(sessions, users, (PLAN,), clock)
    assert await payments.check(1, PLAN.payload, "XTR", 250) is None
    assert await payments.check(1, "sub:30:1", "XTR", 1) is CheckoutProblem.UNKNOWN_PLAN
    assert await payments.check(1, PLAN.payload, "XTR", 249) is CheckoutProblem.WRONG_AMOUNT
    assert await payments.check(1, PLAN.payload, "USD", 250) is CheckoutProblem.WRONG_AMOUNT
    assert await payments.check(99, PLAN.payload, "XTR", 250) is CheckoutProblem.UNKNOWN_USER
    await users.set_ban(1, True, "spam")
    assert await payments.check(1, PLAN.payload, "XTR", 250) is CheckoutProblem.BANNED


async def test_payment_credits_once_and_renewal_extends_from_expiry(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    users = await _users(sessions, clock)
    payments = PaymentService(sessions, users, (PLAN,), clock)
    kwargs = {"provider_charge_id": None, "payload": PLAN.payload, "currency": "XTR", "amount": 250}
    first = await payments.credit(1, charge_id="c1", **kwargs)  # type: ignore[arg-type]
    again = await payments.credit(1, charge_id="c1", **kwargs)  # type: ignore[arg-type]
    assert first is not None and first.credited and again is not None and not again.credited
    end = clock.now() + timedelta(days=30)
    assert first.user.level_until == end and again.user.level_until == end
    clock.advance(timedelta(days=10))
    renewed = await payments.credit(1, charge_id="c2", **kwargs)  # type: ignore[arg-type]
    assert renewed is not None and renewed.user.level_until == end + timedelta(days=30)


async def test_refund_takes_the_days_back_once(sessions: SessionFactory, clock: ManualClock) -> None:
    users = await _users(sessions, clock)
    payments = PaymentService(sessions, users, (PLAN,), clock)
    kwargs = {"provider_charge_id": None, "payload": PLAN.payload, "currency": "XTR", "amount": 250}
    await payments.credit(1, charge_id="c1", **kwargs)  # type: ignore[arg-type]
    await payments.credit(1, charge_id="c2", **kwargs)  # type: ignore[arg-type]
    done = await payments.mark_refunded("c2")
    assert done is not None
    info, view = done
    assert info.status == "refunded" and view.level_until == clock.now() + timedelta(days=30)
    assert await payments.mark_refunded("c2") is None
    done = await payments.mark_refunded("c1")
    assert done is not None and done[1].level is Level.USER and done[1].level_until is None


async def test_register_writes_only_when_something_changed(sessions: SessionFactory, clock: ManualClock) -> None:
    users = await _users(sessions, clock)
    first = await users.get(1)
    assert first is not None
    clock.advance(timedelta(minutes=5))
    same = await users.register(Profile(id=1, first_name="Ann", username="ann", language_code="ru"))
    async with sessions() as session:
        row = await session.get(User, 1)
        assert row is not None and row.last_seen_at == first.created_at  # nothing written
    clock.advance(timedelta(minutes=6))
    await users.register(Profile(id=1, first_name="Ann", username="ann", language_code="ru"))
    async with sessions() as session:
        row = await session.get(User, 1)
        assert row is not None and row.last_seen_at == clock.now()  # stale: refreshed
    renamed = await users.register(Profile(id=1, first_name="Anna", username="ann", language_code="ru"))
    assert same.first_name == "Ann" and renamed.first_name == "Anna"
    await users.set_blocked(1, True)
    assert (
        await users.register(Profile(id=1, first_name="Anna", username="ann", language_code="ru"))
    ).blocked_bot is False
