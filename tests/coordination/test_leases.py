"""Named leases on SQLite and PostgreSQL, and the one-instance-at-a-time loop built on them."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from bot.clock import ManualClock
from bot.coordination.leases import Leases, instance_owner
from bot.db import SessionFactory

TTL = timedelta(seconds=30)


async def _takes_over_only_after_expiry(leases: Leases, clock: ManualClock) -> None:
    assert await leases.acquire("notifier", "a", TTL)
    assert not await leases.acquire("notifier", "b", TTL)
    assert await leases.acquire("other", "b", TTL)  # leases are per name
    clock.advance(timedelta(seconds=20))
    assert await leases.acquire("notifier", "a", TTL)  # renewal: 30 s from now
    clock.advance(timedelta(seconds=20))
    assert not await leases.acquire("notifier", "b", TTL)
    clock.advance(timedelta(seconds=11))
    assert await leases.acquire("notifier", "b", TTL)  # a lapsed
    assert not await leases.acquire("notifier", "a", TTL)
    await leases.release("notifier", "a")  # not a's any more: no effect
    assert not await leases.acquire("notifier", "a", TTL)
    await leases.release("notifier", "b")
    assert await leases.acquire("notifier", "a", TTL)


async def _one_winner_among_racers(leases: Leases) -> None:
    won = await asyncio.gather(*(leases.acquire("sweep", f"owner-{i}", TTL) for i in range(12)))
    assert sum(won) == 1


async def test_lease_lifecycle_on_sqlite(sessions: SessionFactory, clock: ManualClock) -> None:
    await _takes_over_only_after_expiry(Leases(sessions, clock), clock)


async def test_racing_instances_one_winner_on_sqlite(sessions: SessionFactory, clock: ManualClock) -> None:
    await _one_winner_among_racers(Leases(sessions, clock))


@pytest.mark.postgres
async def test_lease_lifecycle_and_race_on_postgres(pg_sessions: SessionFactory, clock: ManualClock) -> None:
    leases = Leases(pg_sessions, clock)
    await _takes_over_only_after_expiry(leases, clock)
    await _one_winner_among_racers(leases)


class Rounds:
    """Counts rounds of work and lets a test wait for the n-th without polling."""

    def __init__(self, fail_first: int = 0) -> None:
        self.count = 0
        self._fail_first = fail_first
        self._changed = asyncio.Condition()

    async def work(self) -> None:
        async with self._changed:
            self.count += 1
            self._changed.notify_all()
        if self.count <= self._fail_first:
            raise RuntimeError("boom")

    async def reach(self, n: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.count >= n), 5)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.wait([task])


async def test_singleton_runs_on_one_instance_and_hands_over_when_stopped(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    leases = Leases(sessions, clock)
    a, b = Rounds(), Rounds()
    first = asyncio.create_task(leases.run_singleton("notifier", "a", 0.01, a.work))
    await a.reach(1)
    second = asyncio.create_task(leases.run_singleton("notifier", "b", 0.01, b.work))
    await a.reach(10)
    assert b.count == 0
    await _stop(first)
    await b.reach(3)  # released on cancel: b need not wait out the ttl
    await _stop(second)
    assert await leases.acquire("notifier", "c", TTL)  # b released too


async def test_singleton_logs_a_failing_round_and_goes_on(
    sessions: SessionFactory, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    leases = Leases(sessions, clock)
    rounds = Rounds(fail_first=2)
    with caplog.at_level(logging.ERROR, logger="bot.coordination.leases"):
        task = asyncio.create_task(leases.run_singleton("sweep", "a", 0.01, rounds.work))
        await rounds.reach(4)
        await _stop(task)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all(r.exc_info for r in errors)


async def test_singleton_renews_while_a_long_round_runs(sessions: SessionFactory, clock: ManualClock) -> None:
    """A round longer than the lease keeps it: another instance does not start the same work."""
    leases = Leases(sessions, clock)
    ttl = timedelta(seconds=0.3)
    release = asyncio.Event()

    async def slow() -> None:
        clock.advance(timedelta(seconds=0.2))  # the day clock moves past the first expiry meanwhile
        await asyncio.sleep(0.25)
        clock.advance(timedelta(seconds=0.2))
        await release.wait()

    task = asyncio.create_task(leases.run_singleton("sweep", "a", 1.0, slow, ttl=ttl))
    await asyncio.sleep(0.4)
    assert not await leases.acquire("sweep", "b", ttl)
    release.set()
    await _stop(task)


def test_instance_owner_fits_the_column_and_differs_per_call() -> None:
    one, two = instance_owner(), instance_owner()
    assert one != two and len(one) <= 64
