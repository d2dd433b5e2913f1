"""Provider cool-downs: the same policy in memory and in Redis, and shared through Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.catalog import ModelId
from bot.clock import ManualClock
from bot.coordination.redis_health import RedisHealthStore
from bot.levels import Level
from bot.providers.base import ErrorKind
from bot.services.generation import GenerationRequest, GenerationResult, GenerationService
from bot.services.health import ProviderHealth
from tests.coordination.conftest import RedisFactory
from tests.support import default_stubs

KEY = "gemini/gemini-flash"
HealthFactory = Callable[[], ProviderHealth]
Elapse = Callable[[float], Awaitable[None]]


def redis_elapse(redis: Redis, namespace: str) -> Elapse:
    """Time passing, for rests that are Redis TTLs: every rest key's TTL shrinks by `seconds`."""

    async def elapse(seconds: float) -> None:
        async for key in redis.scan_iter(match=f"{namespace}:health:*:rest"):
            left = int(await redis.pttl(key)) - int(seconds * 1000)
            if left > 0:
                await redis.pexpire(key, left)
            else:
                await redis.delete(key)

    return elapse


@dataclass
class Healths:
    make: HealthFactory
    elapse: Elapse


@pytest.fixture(params=["memory", "redis"])
async def healths(
    request: pytest.FixtureRequest, clock: ManualClock, namespace: str, redis_factory: RedisFactory
) -> Healths:
    """Fresh ProviderHealth objects; with Redis they share one namespace, like workers would."""

    async def advance(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))

    if request.param == "memory":
        return Healths(lambda: ProviderHealth(clock), advance)
    redis = await redis_factory()
    return Healths(
        lambda: ProviderHealth(clock, store=RedisHealthStore(redis, namespace)), redis_elapse(redis, namespace)
    )


async def _rests_for(health: ProviderHealth, elapse: Elapse, seconds: float) -> bool:
    """Resting now for about `seconds`, still resting just before they pass, awake after."""
    if not seconds - 1 < await health.resting_for(KEY) <= seconds:
        return False
    await elapse(seconds - 0.5)
    if not await health.cooling_down(KEY):
        return False
    await elapse(1)
    return not await health.cooling_down(KEY)


async def test_outages_rest_after_three_then_double_up_to_ten_minutes(healths: Healths) -> None:
    health = healths.make()
    for _ in range(2):
        await health.failed(KEY, ErrorKind.TIMEOUT)
    assert not await health.cooling_down(KEY)
    await health.failed(KEY, ErrorKind.UNAVAILABLE)
    assert await _rests_for(health, healths.elapse, 30)
    await health.failed(KEY, ErrorKind.TIMEOUT)
    assert await _rests_for(health, healths.elapse, 60)
    await health.failed(KEY, ErrorKind.TIMEOUT)
    assert await _rests_for(health, healths.elapse, 120)
    for _ in range(100):  # a long outage: capped, and no overflow on 2 ** n
        await health.failed(KEY, ErrorKind.TIMEOUT)
    assert await _rests_for(health, healths.elapse, 600)
    await health.succeeded(KEY)
    assert not await health.cooling_down(KEY)
    for _ in range(2):  # success starts the count afresh
        await health.failed(KEY, ErrorKind.TIMEOUT)
    assert not await health.cooling_down(KEY)


async def test_rate_limit_and_bad_key_rest_at_once_bad_prompts_never(healths: Healths) -> None:
    health = healths.make()
    for kind in (ErrorKind.BAD_OUTPUT, ErrorKind.BAD_OUTPUT, ErrorKind.BAD_OUTPUT, ErrorKind.BAD_OUTPUT):
        await health.failed(KEY, kind)
    assert not await health.cooling_down(KEY)
    await health.failed(KEY, ErrorKind.RATE_LIMITED)
    assert await _rests_for(health, healths.elapse, 60)
    await health.failed(KEY, ErrorKind.AUTH)
    assert await _rests_for(health, healths.elapse, 300)
    assert not await health.cooling_down("other/step")


async def test_two_instances_on_one_namespace_see_each_others_cool_down(
    redis_factory: RedisFactory, namespace: str, clock: ManualClock
) -> None:
    redis = await redis_factory()
    one = ProviderHealth(clock, store=RedisHealthStore(redis, namespace))
    two = ProviderHealth(clock, store=RedisHealthStore(await redis_factory(), namespace))
    await one.failed(KEY, ErrorKind.RATE_LIMITED)
    assert await two.cooling_down(KEY)
    await two.succeeded(KEY)
    assert not await one.cooling_down(KEY)
    # Outages counted by different workers add up, atomically.
    await asyncio.gather(*(h.failed(KEY, ErrorKind.TIMEOUT) for h in (one, two) * 5))
    assert await _rests_for(one, redis_elapse(redis, namespace), 600)  # ten failures: 30 s * 2**7 capped at 10 min
    other = ProviderHealth(clock, store=RedisHealthStore(await redis_factory(), namespace + "-other"))
    assert not await other.cooling_down(KEY)


async def test_a_step_resting_on_one_worker_is_skipped_by_another(
    redis_factory: RedisFactory, namespace: str, clock: ManualClock
) -> None:
    stubs_a, stubs_b = default_stubs(), default_stubs()
    stubs_a["gemini"].outcomes = [ErrorKind.TIMEOUT] * 3
    redis = await redis_factory()
    worker_a = GenerationService(
        list(stubs_a.values()), ProviderHealth(clock, store=RedisHealthStore(redis, namespace))
    )
    worker_b = GenerationService(
        list(stubs_b.values()), ProviderHealth(clock, store=RedisHealthStore(await redis_factory(), namespace))
    )
    request = GenerationRequest("a cat", ModelId.GEMINI_FLASH, Level.USER)
    for _ in range(3):
        await worker_a.generate(request)
    outcome = await worker_b.generate(request)
    assert isinstance(outcome, GenerationResult) and outcome.first.provider == "hf-replicate"
    assert stubs_b["gemini"].calls == [] and outcome.attempts[0].outcome == "cooling_down"
    await redis_elapse(redis, namespace)(31)
    outcome = await worker_b.generate(request)
    assert isinstance(outcome, GenerationResult) and outcome.first.provider == "gemini"


async def test_redis_failure_reads_as_healthy(clock: ManualClock, closed_port_url: str) -> None:
    port = int(closed_port_url.rsplit(":", 1)[1])
    broken = Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    try:
        health = ProviderHealth(clock, store=RedisHealthStore(broken, "x"))
        await health.failed(KEY, ErrorKind.RATE_LIMITED)  # logged, not raised
        assert not await health.cooling_down(KEY)
        assert not await health.cooling_down(KEY)  # now without asking Redis for a few seconds
    finally:
        await broken.aclose()
