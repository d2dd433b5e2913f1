"""The anti-flood counters: GCRA per user, one notice per window; in Redis, shared by instances and
driven by the injectable clock."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import ManualClock
from bot.coordination.flood import NOTICE_EVERY, MemoryFloodGate, Verdict
from bot.coordination.ratelimit import Bucket
from bot.coordination.redis_flood import RedisFloodGate
from tests.conftest import START
from tests.coordination.conftest import RedisFactory

P, N, D = Verdict.PASS, Verdict.NOTIFY, Verdict.DROP


async def test_memory_gate_passes_the_burst_then_tells_once_and_refills_with_time() -> None:
    now = [100.0]
    gate = MemoryFloodGate(Bucket(rate=2, burst=3), now=lambda: now[0])
    assert [await gate.admit(1) for _ in range(6)] == [P, P, P, N, D, D]
    assert await gate.admit(2) is P  # other users have their own bucket
    now[0] += 0.5  # one more update's worth
    assert [await gate.admit(1) for _ in range(2)] == [P, D]  # still told once this window
    now[0] += NOTICE_EVERY
    assert [await gate.admit(1) for _ in range(5)] == [P, P, P, N, D]


async def test_redis_gate_is_shared_by_instances_and_reads_the_injected_clock(
    redis_factory: RedisFactory, namespace: str
) -> None:
    clock = ManualClock(START)
    bucket = Bucket(rate=2, burst=3)
    a = RedisFloodGate(await redis_factory(), namespace, bucket, lambda: clock.now().timestamp())
    b = RedisFloodGate(await redis_factory(), namespace, bucket, lambda: clock.now().timestamp())
    assert [await a.admit(1), await b.admit(1), await a.admit(1)] == [P, P, P]
    assert [await b.admit(1), await a.admit(1), await b.admit(1)] == [N, D, D]  # one notice across both
    assert await b.admit(2) is P
    clock.advance(timedelta(seconds=0.5))
    assert [await a.admit(1), await b.admit(1)] == [P, D]
    clock.advance(timedelta(seconds=NOTICE_EVERY))
    assert [await b.admit(1) for _ in range(5)] == [P, P, P, N, D]
