"""A cool-down lasts its duration whatever the wall clock does: a step backwards (NTP, an operator,
a VM resumed) must not make a 60-second rest last an hour."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import Clock, ManualClock
from bot.coordination.redis_health import RedisHealthStore
from bot.providers.base import ErrorKind
from bot.services.health import ProviderHealth
from tests.coordination.conftest import RedisFactory

KEY = "gemini/gemini-flash"


async def test_a_wall_clock_step_back_does_not_lengthen_a_rest_in_memory(clock: ManualClock) -> None:
    health = ProviderHealth(clock)
    await health.failed(KEY, ErrorKind.RATE_LIMITED)  # rests 60 s
    clock.set(clock.now() - timedelta(hours=1))  # the wall clock jumps back an hour
    assert 59 < await health.resting_for(KEY) <= 60
    clock.advance(timedelta(seconds=61))
    assert not await health.cooling_down(KEY)


async def test_a_wall_clock_step_forward_does_not_end_a_rest_early_in_memory(clock: ManualClock) -> None:
    health = ProviderHealth(clock)
    await health.failed(KEY, ErrorKind.AUTH)  # rests 5 min
    clock.set(clock.now() + timedelta(hours=1))
    assert await health.cooling_down(KEY)


async def test_a_wall_clock_step_back_does_not_lengthen_a_rest_in_redis(
    clock: ManualClock, redis_factory: RedisFactory, namespace: str
) -> None:
    health = ProviderHealth(clock, store=RedisHealthStore(await redis_factory(), namespace))
    await health.failed(KEY, ErrorKind.RATE_LIMITED)
    clock.set(clock.now() - timedelta(hours=1))
    assert 59 < await health.resting_for(KEY) <= 60
    other_process = ProviderHealth(ManualClock(clock.now() + timedelta(days=1)), store=RedisHealthStore(
        await redis_factory(), namespace
    ))  # fmt: skip
    assert 59 < await other_process.resting_for(KEY) <= 60  # its clock disagrees; the rest does not


async def test_the_real_clock_measures_rests_monotonically() -> None:
    health = ProviderHealth(Clock())
    await health.failed(KEY, ErrorKind.RATE_LIMITED)
    assert 59 < await health.resting_for(KEY) <= 60
