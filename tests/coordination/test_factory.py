"""build_coordination: memory without REDIS_URL, Redis with it, and a clear error when Redis is away."""

from __future__ import annotations

import traceback

import pytest

from bot.clock import ManualClock
from bot.coordination.concurrency import MemoryConcurrency
from bot.coordination.factory import CoordinationUnavailable, build_coordination
from bot.coordination.flood import MemoryFloodGate, Verdict
from bot.coordination.ratelimit import MemorySendLimiter
from bot.coordination.redis_concurrency import RedisConcurrency
from bot.coordination.redis_flood import RedisFloodGate
from bot.coordination.redis_ratelimit import RedisSendLimiter
from bot.providers.base import ErrorKind
from tests.conftest import make_settings
from tests.coordination.conftest import REDIS_URL, RedisFactory


async def test_without_redis_url_everything_is_in_memory(db_url: str, clock: ManualClock) -> None:
    coordination = await build_coordination(make_settings(db_url), clock)
    assert coordination.redis is None
    assert isinstance(coordination.limiter, MemoryConcurrency)
    assert isinstance(coordination.telegram_limiter, MemorySendLimiter)
    assert isinstance(coordination.flood, MemoryFloodGate)
    await coordination.health.failed("k", ErrorKind.RATE_LIMITED)
    assert await coordination.health.cooling_down("k")
    await coordination.aclose()


async def test_with_redis_url_two_builds_share_state(
    db_url: str, clock: ManualClock, namespace: str, redis_factory: RedisFactory
) -> None:
    await redis_factory()  # skips (or fails under CI) when no Redis answers
    settings = make_settings(db_url, REDIS_URL=REDIS_URL, REDIS_NAMESPACE=namespace)
    one = await build_coordination(settings, clock)
    two = await build_coordination(settings, clock)
    try:
        assert one.redis is not None
        assert isinstance(one.limiter, RedisConcurrency)
        assert isinstance(one.telegram_limiter, RedisSendLimiter)
        assert isinstance(one.flood, RedisFloodGate) and isinstance(two.flood, RedisFloodGate)
        verdicts = [await (one if i % 2 else two).flood.admit(5) for i in range(25)]  # type: ignore[union-attr]
        assert verdicts.count(Verdict.NOTIFY) == 1  # the default burst (20) is spent across both
        await one.health.failed("gemini/gemini-flash", ErrorKind.AUTH)
        assert await two.health.cooling_down("gemini/gemini-flash")
    finally:
        await one.aclose()
        await two.aclose()


async def test_unreachable_redis_is_a_clear_error_without_the_url(
    db_url: str, clock: ManualClock, closed_port_url: str
) -> None:
    port = closed_port_url.rsplit(":", 1)[1]
    settings = make_settings(db_url, REDIS_URL=f"redis://:hunter2-secret@127.0.0.1:{port}/0")
    with pytest.raises(CoordinationUnavailable) as caught:
        await build_coordination(settings, clock)
    assert str(caught.value) == "Redis at REDIS_URL did not answer"
    printed = "".join(traceback.format_exception(caught.value))
    assert "hunter2" not in printed and port not in printed
