"""Redis is advisory: when it fails, slots, pacing and cool-downs step aside instead of failing calls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.coordination.ratelimit import SendRates
from bot.coordination.redis_common import Degradation
from bot.coordination.redis_concurrency import RedisConcurrency
from bot.coordination.redis_ratelimit import RedisSendLimiter


@pytest.fixture
async def broken(closed_port_url: str) -> AsyncIterator[Redis]:
    port = int(closed_port_url.rsplit(":", 1)[1])
    client = Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    yield client
    await client.aclose()


async def test_slots_and_pacing_go_ahead_without_redis(broken: Redis, caplog: pytest.LogCaptureFixture) -> None:
    limiter = RedisConcurrency(broken, "ns", {"flux-dev": 1})
    pacing = RedisSendLimiter(broken, "ns", SendRates.of(1, 1, 1))
    with caplog.at_level(logging.WARNING, logger="bot.coordination"):
        async with asyncio.timeout(2):
            for _ in range(3):
                async with limiter.slot("flux-dev"), limiter.slot("flux-dev"):  # limit 1, yet both go
                    pass
                await pacing.wait(1, 2)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2  # one per component, not one per call
    assert all("going on without it" in w for w in warnings)


def test_degradation_skips_for_a_while_and_warns_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    degradation = Degradation(logging.getLogger("t"), "x", skip_for=5, warn_every=60, now=lambda: now[0])
    assert not degradation.skipping
    with caplog.at_level(logging.WARNING, logger="t"):
        degradation.failed(ConnectionError())
        assert degradation.skipping
        now[0] = 5.0
        assert not degradation.skipping  # time to try Redis again
        degradation.failed(ConnectionError())
        now[0] = 61.0
        degradation.failed(ConnectionError())
    assert len(caplog.records) == 2
