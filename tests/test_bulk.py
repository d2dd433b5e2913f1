"""The bulk gate: bulk work holds at most N connections, oldest work first; everything else passes."""

from __future__ import annotations

import asyncio

import pytest

from bot.bulk import BulkGate, bulk_work, is_bulk, urgent_work
from bot.db import SessionFactory, create_engine, create_session_factory, run_migrations


async def _spin() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_bulk_work_holds_at_most_the_slots_and_the_oldest_goes_first() -> None:
    gate = BulkGate(2)
    release = asyncio.Event()
    running: list[str] = []
    now = most = 0

    async def work(name: str, started: asyncio.Event) -> None:
        nonlocal now, most
        with bulk_work():
            started.set()
            await asyncio.sleep(0.01 if name != "old" else 0.05)  # "old" began first but asks last
            async with gate.hold():
                running.append(name)
                now += 1
                most = max(most, now)
                await release.wait()
                await asyncio.sleep(0)
                now -= 1

    started = asyncio.Event()
    old = asyncio.create_task(work("old", started))
    await started.wait()
    tasks = [old]
    for name in ("a", "b", "c", "d"):
        started = asyncio.Event()
        tasks.append(asyncio.create_task(work(name, started)))
        await started.wait()
    await asyncio.sleep(0.1)
    assert running == ["a", "b"] and gate.waiting == 3  # two slots; "old" waits with c and d
    release.set()
    await asyncio.gather(*tasks)
    # When a slot frees, the work that began earliest is served, not the one that asked first.
    assert running == ["a", "b", "old", "c", "d"]
    assert most == 2


async def test_work_that_is_not_bulk_never_waits_and_nested_sessions_do_not_deadlock() -> None:
    gate = BulkGate(1)
    hold = asyncio.Event()

    async def crowd() -> None:
        with bulk_work():
            async with gate.hold(), gate.hold():  # a session opened inside another: no second slot
                await hold.wait()

    first = asyncio.create_task(crowd())
    await _spin()
    assert not is_bulk()
    async with gate.hold():  # a command's read: straight through although the slot is taken
        pass

    async def renewal() -> bool:
        with bulk_work(), urgent_work():
            async with gate.hold():
                return True

    assert await asyncio.wait_for(renewal(), 1)
    hold.set()
    await first


async def test_a_cancelled_waiter_gives_its_place_up_and_no_slot_is_lost() -> None:
    gate = BulkGate(1)
    hold = asyncio.Event()

    async def user(wait_for: asyncio.Event | None) -> None:
        with bulk_work():
            async with gate.hold():
                if wait_for is not None:
                    await wait_for.wait()

    holder = asyncio.create_task(user(hold))
    await _spin()
    cancelled = asyncio.create_task(user(None))
    await _spin()
    assert gate.waiting == 1
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert gate.waiting == 0
    hold.set()
    await holder
    await asyncio.wait_for(user(None), 1)  # the slot came back
    await asyncio.wait_for(asyncio.gather(user(None), user(None)), 1)


async def test_sessions_of_bulk_work_wait_for_a_slot_and_other_sessions_do_not(db_url: str) -> None:
    engine = create_engine(db_url)
    await run_migrations(engine)
    sessions: SessionFactory = create_session_factory(engine, bulk_slots=1)
    hold = asyncio.Event()
    inside = asyncio.Event()

    async def bulk_session() -> None:
        with bulk_work():
            async with sessions.begin():
                inside.set()
                await hold.wait()

    first = asyncio.create_task(bulk_session())
    await inside.wait()
    second = asyncio.create_task(bulk_session())
    await asyncio.sleep(0.05)
    assert sessions.gate is not None and sessions.gate.waiting == 1
    async with sessions() as session:  # not bulk: opens while both bulk sessions wait or hold
        assert session is not None
    hold.set()
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    await engine.dispose()
