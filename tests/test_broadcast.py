"""Two instances share one database: a broadcast started on one refuses a second on the other."""

from __future__ import annotations

import asyncio

from bot.broadcast import Broadcaster, BroadcastResult
from bot.clock import ManualClock
from bot.coordination.leases import Leases
from bot.db import SessionFactory
from bot.services.audience import AudienceService
from bot.services.users import Profile, UserService


async def test_one_broadcast_at_a_time_across_instances(sessions: SessionFactory, clock: ManualClock) -> None:
    users = UserService(sessions, clock, frozenset())
    audience = AudienceService(users.rows)
    for uid in range(1, 4):
        await users.register(Profile(id=uid, first_name=f"U{uid}"))
    leases = Leases(sessions, clock)
    first = Broadcaster(audience, rate=30, leases=leases, owner="instance-a")
    second = Broadcaster(audience, rate=30, leases=leases, owner="instance-b")
    gate = asyncio.Event()
    sent: list[int] = []
    reports: list[BroadcastResult] = []

    async def slow_send(user_id: int) -> None:
        await gate.wait()
        sent.append(user_id)

    async def report(result: BroadcastResult) -> None:
        reports.append(result)

    assert await first.start(slow_send, report) == 3
    assert await second.start(slow_send, report) is None  # instance a holds the lease
    gate.set()
    await first.wait()
    assert sorted(sent) == [1, 2, 3] and reports[0].delivered == 3
    assert await second.start(slow_send, report) == 3  # released when done
    await second.wait()
