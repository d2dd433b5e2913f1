"""Provider cool-downs: the same policy in memory and in Redis, and shared through Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.clock import ManualClock
from bot.coordination.redis_health import RedisHealthStore
from bot.levels import Level
from bot.providers.base import ErrorKind, ModelId
from bot.services.generation import GenerationRequest, GenerationResult, GenerationService
from bot.services.health import ProviderHealth
from tests.coordination.conftest import RedisFactory
from tests.support import default_stubs

KEY = "gemini/gemini-flash"
HealthFactory = Callable[[], ProviderHealth]


@pytest.fixture(params=["memory", "redis"])
async def make_health(
    request: pytest.FixtureRequest, clock: ManualClock, namespace: str, redis_factory: RedisFactory
) -> HealthFactory:
    """Fresh ProviderHealth objects; with Redis they share one namespace, like workers would."""
    if request.param == "memory":
        return lambda: ProviderHealth(clock)
    redis = await redis_factory()
    return lambda: ProviderHealth(clock, store=RedisHealthStore(redis, namespace))


async def _rests_for(health: ProviderHealth, clock: ManualClock, seconds: float) -> bool:
    """Resting now, resting just before `seconds`, awake after; the clock ends where it started."""
    start = clock.now()
    try:
        if not await health.cooling_down(KEY):
            return False
        clock.advance(timedelta(seconds=seconds - 0.5))
        if not await health.cooling_down(KEY):
            return False
        clock.advance(timedelta(seconds=1))
        return not await health.cooling_down(KEY)
    finally:
        clock.set(start)


async def test_outages_rest_after_three_then_double_up_to_ten_minutes(
    make_health: HealthFactory, clock: ManualClock
) -> None:
    health = make_health()
    for _ in range(2):
        await health.failed(KEY, ErrorKind.TIMEOUT)
    assert not await health.cooling_down(KEY)
    await health.failed(KEY, ErrorKind.UNAVAILABLE)
    assert await _rests_for(health, clock, 30)
    await health.failed(KEY, ErrorKind.TIMEOUT)
    assert await _rests_for(health, clock, 60)
    await health.failed(KEY, ErrorKind.TIMEOUT)
    assert await _rests_for(health, clock, 120)
    for _ in range(100):  # a long outage: capped, and no overflow on 2 ** n
        await health.failed(KEY, ErrorKind.TIMEOUT)
    assert await _rests_for(health, clock, 600)
    await health.succeeded(KEY)
    assert not await health.cooling_down(KEY)
    for _ in range(2):  # success starts the count afresh
        await health.failed(KEY, ErrorKind.TIMEOUT)
    assert not await health.cooling_down(KEY)


async def test_rate_limit_and_bad_key_rest_at_once_bad_prompts_never(
    make_health: HealthFactory, clock: ManualClock
) -> None:
    health = make_health()
    for kind in (ErrorKind.BAD_OUTPUT, ErrorKind.BAD_OUTPUT, ErrorKind.BAD_OUTPUT, ErrorKind.BAD_OUTPUT):
        await health.failed(KEY, kind)
    assert not await health.cooling_down(KEY)
    await health.failed(KEY, ErrorKind.RATE_LIMITED)
    assert await _rests_for(health, clock, 60)
    await health.failed(KEY, ErrorKind.AUTH)
    assert await _rests_for(health, clock, 300)
    assert not await health.cooling_down("other/step")


async def test_two_instances_on_one_namespace_see_each_others_cool_down(
    redis_factory: RedisFactory, namespace: str, clock: ManualClock
) -> None:
    one = ProviderHealth(clock, store=RedisHealthStore(await redis_factory(), namespace))
    two = ProviderHealth(clock, store=RedisHealthStore(await redis_factory(), namespace))
    await one.failed(KEY, ErrorKind.RATE_LIMITED)
    assert await two.cooling_down(KEY)
    await two.succeeded(KEY)
    assert not await one.cooling_down(KEY)
    # Outages counted by different workers add up, atomically.
    await asyncio.gather(*(h.failed(KEY, ErrorKind.TIMEOUT) for h in (one, two) * 5))
    assert await _rests_for(one, clock, 600)  # ten failures: 30 s * 2**7 capped at 10 min
    other = ProviderHealth(clock, store=RedisHealthStore(await redis_factory(), namespace + "-other"))
    assert not await other.cooling_down(KEY)


async def test_a_step_resting_on_one_worker_is_skipped_by_another(
    redis_factory: RedisFactory, namespace: str, clock: ManualClock
) -> None:
    stubs_a, stubs_b = default_stubs(), default_stubs()
    stubs_a["gemini"].outcomes = [ErrorKind.TIMEOUT] * 3
    worker_a = GenerationService(
        list(stubs_a.values()), ProviderHealth(clock, store=RedisHealthStore(await redis_factory(), namespace))
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
    clock.advance(timedelta(seconds=31))
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
