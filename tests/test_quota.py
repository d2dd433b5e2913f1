"""Daily limits: atomic reservations, releases, day boundaries in the configured zone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import ManualClock
from bot.db import SessionFactory
from bot.levels import Level
from bot.services.quota import QuotaService
from bot.services.users import Profile, UserService
from tests.conftest import make_settings


async def _setup(sessions: SessionFactory, clock: ManualClock, **limits: object) -> QuotaService:
    settings = make_settings("sqlite+aiosqlite://", **limits)
    await UserService(sessions, clock, frozenset()).register(Profile(id=1, first_name="Ann"))
    return QuotaService(sessions, settings, clock)


async def test_reserves_up_to_the_limit_then_refuses(sessions: SessionFactory, clock: ManualClock) -> None:
    quota = await _setup(sessions, clock, DAILY_LIMIT_USER=3)
    got = [await quota.reserve(1, Level.USER) for _ in range(4)]
    assert [r.used if r else None for r in got] == [1, 2, 3, None]
    assert got[2] is not None and got[2].remaining == 0
    status = await quota.status(1, Level.USER)
    assert (status.used, status.limit, status.exhausted) == (3, 3, True)


async def test_release_gives_the_unit_back(sessions: SessionFactory, clock: ManualClock) -> None:
    quota = await _setup(sessions, clock, DAILY_LIMIT_USER=1)
    first = await quota.reserve(1, Level.USER)
    assert first is not None
    assert await quota.reserve(1, Level.USER) is None
    await quota.release(1, first.day)
    assert (await quota.status(1, Level.USER)).used == 0
    assert await quota.reserve(1, Level.USER) is not None


async def test_release_never_goes_negative(sessions: SessionFactory, clock: ManualClock) -> None:
    quota = await _setup(sessions, clock)
    await quota.release(1, clock.today())
    assert (await quota.status(1, Level.USER)).used == 0


async def test_new_day_in_the_configured_zone_resets(sessions: SessionFactory) -> None:
    # 20:30 UTC on the 23rd is already 23:30 in Moscow; midnight Moscow is 21:00 UTC.
    clock = ManualClock(datetime(2026, 11, 23, 20, 30, tzinfo=UTC), tz="Europe/Moscow")
    quota = await _setup(sessions, clock, DAILY_LIMIT_USER=1, TIMEZONE="Europe/Moscow")
    assert await quota.reserve(1, Level.USER) is not None
    assert await quota.reserve(1, Level.USER) is None
    assert (await quota.status(1, Level.USER)).resets_at == datetime(2026, 11, 23, 21, 0, tzinfo=UTC)
    clock.advance(timedelta(minutes=31))
    assert await quota.reserve(1, Level.USER) is not None


async def test_release_after_midnight_goes_to_the_day_it_was_taken(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    quota = await _setup(sessions, clock, DAILY_LIMIT_USER=2)
    taken = await quota.reserve(1, Level.USER)
    assert taken is not None
    clock.advance(timedelta(days=1))
    assert (await quota.reserve(1, Level.USER)) is not None
    await quota.release(1, taken.day)
    assert (await quota.status(1, Level.USER)).used == 1  # today's unit untouched


async def test_zero_means_unlimited(sessions: SessionFactory, clock: ManualClock) -> None:
    quota = await _setup(sessions, clock, DAILY_LIMIT_ADMIN=0)
    for _ in range(30):
        reservation = await quota.reserve(1, Level.ADMIN)
        assert reservation is not None and reservation.remaining is None
    assert (await quota.status(1, Level.ADMIN)).used == 30


async def test_limits_follow_the_level(sessions: SessionFactory, clock: ManualClock) -> None:
    quota = await _setup(sessions, clock, DAILY_LIMIT_USER=1, DAILY_LIMIT_SUBSCRIBER=3)
    assert await quota.reserve(1, Level.USER) is not None
    assert await quota.reserve(1, Level.USER) is None
    assert await quota.reserve(1, Level.SUBSCRIBER) is not None  # an upgrade adds to the same day


async def _hammer(quota: QuotaService, n: int) -> int:
    results = await asyncio.gather(*(quota.reserve(1, Level.USER) for _ in range(n)))
    return sum(r is not None for r in results)


async def test_concurrent_reservations_never_exceed_the_limit_sqlite(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    quota = await _setup(sessions, clock, DAILY_LIMIT_USER=5)
    assert await _hammer(quota, 60) == 5
    assert (await quota.status(1, Level.USER)).used == 5


@pytest.mark.postgres
async def test_concurrent_reservations_never_exceed_the_limit_postgres(
    pg_sessions: SessionFactory, clock: ManualClock
) -> None:
    quota = await _setup(pg_sessions, clock, DAILY_LIMIT_USER=5)
    assert await _hammer(quota, 60) == 5
    taken = await quota.reserve(1, Level.USER)
    assert taken is None
    await quota.release(1, clock.today())
    assert (await quota.status(1, Level.USER)).used == 4
