"""Per-step concurrency caps: in one process, across processes through Redis, and in the chain."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.catalog import ModelId
from bot.coordination.concurrency import ConcurrencyLimiter, MemoryConcurrency
from bot.coordination.redis_concurrency import RedisConcurrency
from bot.levels import Level
from bot.providers.base import ImageOptions, ProviderImage
from bot.services.generation import GenerationRequest, GenerationResult, GenerationService
from tests.coordination.conftest import REDIS_URL, RedisFactory
from tests.support import StubProvider

ROOT = Path(__file__).resolve().parents[2]
STEP = "flux-dev"

# Another process that takes a slot and then hangs until killed.
HOLDER = """
import asyncio, sys
from redis.asyncio import Redis
from bot.coordination.redis_concurrency import RedisConcurrency

async def main():
    url, namespace, step, ttl = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    limiter = RedisConcurrency(Redis.from_url(url), namespace, {step: 1}, ttl=ttl)
    async with limiter.slot(step):
        print("held", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


class Gauge:
    """Counts how many holders are inside at once."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.done = 0

    async def hold(self, limiter: ConcurrencyLimiter, key: str = STEP, seconds: float = 0.03) -> None:
        async with limiter.slot(key):
            self.inside += 1
            self.most = max(self.most, self.inside)
            await asyncio.sleep(seconds)
            self.inside -= 1
            self.done += 1


async def _run(gauge: Gauge, limiters: Sequence[ConcurrencyLimiter], n: int, key: str = STEP) -> None:
    await asyncio.wait_for(asyncio.gather(*(gauge.hold(limiters[i % len(limiters)], key) for i in range(n))), 10)


async def test_memory_limit_of_one_lets_one_in_at_a_time() -> None:
    gauge = Gauge()
    await _run(gauge, [MemoryConcurrency({STEP: 1})], 5)
    assert (gauge.most, gauge.done) == (1, 5)


async def test_memory_absent_or_zero_limit_is_unlimited() -> None:
    limiter = MemoryConcurrency({STEP: 0})
    for key in (STEP, "pollinations"):
        gauge = Gauge()
        await _run(gauge, [limiter], 5, key)
        assert gauge.most == 5


async def test_redis_limit_of_one_is_shared_by_two_limiters(redis_factory: RedisFactory, namespace: str) -> None:
    one = RedisConcurrency(await redis_factory(), namespace, {STEP: 1}, poll_min=0.005, poll_max=0.02)
    two = RedisConcurrency(await redis_factory(), namespace, {STEP: 1}, poll_min=0.005, poll_max=0.02)
    gauge = Gauge()
    await _run(gauge, [one, two], 6)
    assert (gauge.most, gauge.done) == (1, 6)


async def test_redis_limit_of_two_admits_two(redis_factory: RedisFactory, namespace: str) -> None:
    limiters = [
        RedisConcurrency(await redis_factory(), namespace, {STEP: 2}, poll_min=0.005, poll_max=0.02) for _ in range(3)
    ]
    gauge = Gauge()
    await _run(gauge, limiters, 9)
    assert (gauge.most, gauge.done) == (2, 9)


async def test_redis_unlimited_step_writes_nothing(redis_factory: RedisFactory, namespace: str) -> None:
    redis = await redis_factory()
    gauge = Gauge()
    await _run(gauge, [RedisConcurrency(redis, namespace, {STEP: 1})], 4, "pollinations")
    assert gauge.most == 4
    assert [key async for key in redis.scan_iter(match=f"{namespace}:*")] == []


async def test_redis_slot_is_given_back_on_error_and_on_cancel(redis_factory: RedisFactory, namespace: str) -> None:
    redis = await redis_factory()
    limiter = RedisConcurrency(redis, namespace, {STEP: 1}, poll_min=0.005, poll_max=0.02)
    with pytest.raises(RuntimeError):
        async with limiter.slot(STEP):
            raise RuntimeError("provider bug")
    entered = asyncio.Event()

    async def holder() -> None:
        async with limiter.slot(STEP):
            entered.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(holder())
    await asyncio.wait_for(entered.wait(), 5)
    waiter = asyncio.create_task(Gauge().hold(limiter))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    waiter.cancel()  # cancelled while waiting: must not leave a claim behind
    task.cancel()
    await asyncio.wait([task, waiter])
    assert await redis.zcard(f"{namespace}:slots:{STEP}") == 0
    await asyncio.wait_for(Gauge().hold(limiter), 1)


async def test_redis_holder_keeps_its_slot_past_ttl_by_renewing(redis_factory: RedisFactory, namespace: str) -> None:
    one = RedisConcurrency(await redis_factory(), namespace, {STEP: 1}, ttl=0.3)
    two = RedisConcurrency(await redis_factory(), namespace, {STEP: 1}, ttl=0.3, poll_min=0.01, poll_max=0.02)
    async with one.slot(STEP):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(Gauge().hold(two), 0.8)  # well past the ttl


async def test_redis_slot_of_a_killed_process_frees_after_ttl(redis_factory: RedisFactory, namespace: str) -> None:
    ttl = 3.0  # room for a loaded machine between the kill and the first look
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, REDIS_URL, namespace, STEP, str(ttl),
        stdout=asyncio.subprocess.PIPE, cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert line.strip() == b"held"
    finally:
        proc.kill()  # no release, no renewal: as if the machine died
        await proc.wait()
    killed_at = time.monotonic()
    limiter = RedisConcurrency(await redis_factory(), namespace, {STEP: 1}, ttl=ttl, poll_min=0.01, poll_max=0.05)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(Gauge().hold(limiter, seconds=0), 0.3)
    await asyncio.wait_for(Gauge().hold(limiter, seconds=0), ttl + 3)
    assert time.monotonic() - killed_at < ttl + 3


class CountingProvider(StubProvider):
    def __init__(self) -> None:
        super().__init__("hf-replicate", [ModelId.FLUX_DEV, ModelId.FLUX_PRO], delay=0.03)
        self.gauge = Gauge()

    async def generate(self, model: ModelId, prompt: str, options: ImageOptions) -> ProviderImage:
        self.gauge.inside += 1
        self.gauge.most = max(self.gauge.most, self.gauge.inside)
        try:
            return await super().generate(model, prompt, options)
        finally:
            self.gauge.inside -= 1


@pytest.mark.parametrize("limits, most", [({"flux-dev": 1}, 1), ({"flux-dev": 2}, 2), ({"gemini-flash": 1}, 4)])
async def test_generation_service_holds_a_slot_of_the_step_around_the_call(limits: dict[str, int], most: int) -> None:
    provider = CountingProvider()
    service = GenerationService([provider], limiter=MemoryConcurrency(limits))
    request = GenerationRequest("a cat", ModelId.FLUX_DEV, Level.USER)
    outcomes = await asyncio.gather(*(service.generate(request) for _ in range(4)))
    assert all(isinstance(o, GenerationResult) for o in outcomes)
    assert provider.gauge.most == most


async def test_a_waiter_whose_cancellation_redis_swallowed_still_stops(
    redis_factory: RedisFactory, namespace: str
) -> None:
    """redis-py can turn a cancellation that lands mid-command into an error it retries: the poll loop
    must still end, or `wait_for` (and the holder waiting on it) hangs for good, as it once did in CI."""
    one = RedisConcurrency(await redis_factory(), namespace, {STEP: 1}, ttl=5)  # never lapses under a slow loop
    two = RedisConcurrency(await redis_factory(), namespace, {STEP: 1}, ttl=0.3, poll_min=0.001, poll_max=0.001)
    real_acquire = two._acquire
    after_cancel = 0

    async def swallowing_acquire(**kwargs: Any) -> Any:
        nonlocal after_cancel
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            after_cancel += 1
            if after_cancel > 50:
                raise RuntimeError("still polling long after the cancel")
        try:
            await asyncio.sleep(0.05)  # a slow command: the cancel lands here, not in the poll's sleep
            return await real_acquire(**kwargs)
        except asyncio.CancelledError:
            return 0  # what a swallowed cancellation looks like to the loop: "not yet"

    two._acquire = swallowing_acquire  # type: ignore[method-assign]
    async with one.slot(STEP):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(Gauge().hold(two), 0.3)
    assert after_cancel <= 1
