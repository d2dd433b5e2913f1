"""Builds the coordination pieces: shared through Redis when REDIS_URL is set, in memory otherwise."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.config import Settings
from bot.coordination.concurrency import ConcurrencyLimiter, MemoryConcurrency
from bot.coordination.flood import FloodGate, MemoryFloodGate
from bot.coordination.ratelimit import Bucket, MemorySendLimiter, SendRateLimiter, SendRates
from bot.services.health import ProviderHealth

if TYPE_CHECKING:  # redis loads only when REDIS_URL is set: the default set-up saves about 6 MiB
    from redis.asyncio import BlockingConnectionPool, Redis

log = logging.getLogger(__name__)

REDIS_CONNECT_TIMEOUT = 2.0
REDIS_COMMAND_TIMEOUT = 5.0
# redis-py 7 retries 10 times by default (seconds per call while Redis is down); a blip needs fewer.
REDIS_RETRIES = 2


class CoordinationUnavailable(Exception):
    """Redis was configured but cannot be used; the message never contains the URL (it may hold a password)."""


@dataclass
class Coordination:
    health: ProviderHealth
    limiter: ConcurrencyLimiter
    telegram_limiter: SendRateLimiter
    redis: Redis | None  # decode_responses=True; None in memory mode
    flood: FloodGate | None = None  # None: FLOOD_RATE=0, no anti-flood

    async def aclose(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


def send_rates(settings: Settings) -> SendRates:
    return SendRates.of(settings.telegram_rate, settings.telegram_chat_rate, settings.telegram_chat_burst)


async def build_coordination(settings: Settings, clock: Clock) -> Coordination:
    """Memory without REDIS_URL; with it, Redis is pinged now so a bad URL stops start-up, not a request."""
    rates = send_rates(settings)
    flood = Bucket(settings.flood_rate, settings.flood_burst) if settings.flood_rate > 0 else None
    if settings.redis_url is None:
        return Coordination(
            health=ProviderHealth(clock),
            limiter=MemoryConcurrency(settings.provider_concurrency),
            telegram_limiter=MemorySendLimiter(rates),
            redis=None,
            flood=MemoryFloodGate(flood) if flood is not None else None,
        )
    from bot.coordination.redis_concurrency import RedisConcurrency
    from bot.coordination.redis_flood import RedisFloodGate
    from bot.coordination.redis_health import RedisHealthStore
    from bot.coordination.redis_ratelimit import RedisSendLimiter

    redis = await connect_redis(settings.redis_url)
    namespace = settings.redis_namespace
    return Coordination(
        health=ProviderHealth(clock, store=RedisHealthStore(redis, namespace)),
        limiter=RedisConcurrency(redis, namespace, settings.provider_concurrency),
        telegram_limiter=RedisSendLimiter(redis, namespace, rates),
        redis=redis,
        flood=RedisFloodGate(redis, namespace, flood, lambda: clock.now().timestamp()) if flood is not None else None,
    )


REDIS_POOL_SIZE = 100
REDIS_POOL_WAIT = 10.0


def blocking_pool(url: str, **kwargs: object) -> BlockingConnectionPool:
    """A pool that waits for a free connection: redis-py 8's default pool raises MaxConnectionsError
    the moment 100 are in use, which a burst of updates reaches (each FSM look-up takes one)."""
    from redis.asyncio import BlockingConnectionPool

    return BlockingConnectionPool.from_url(
        url,
        max_connections=REDIS_POOL_SIZE,
        timeout=REDIS_POOL_WAIT,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        socket_timeout=REDIS_COMMAND_TIMEOUT,
        **kwargs,
    )


async def connect_redis(url: str) -> Redis:
    """A client that has answered PING, or CoordinationUnavailable (without the URL or its secrets)."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.exceptions import AuthenticationError

    from bot.coordination.redis_common import REDIS_ERRORS

    retry = Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.2), REDIS_RETRIES)
    try:
        redis = Redis(connection_pool=blocking_pool(url, decode_responses=True, retry=retry))
    except ValueError:
        raise CoordinationUnavailable("REDIS_URL is not a usable Redis URL") from None
    try:
        await redis.ping()
    except AuthenticationError:
        await redis.aclose()
        raise CoordinationUnavailable("Redis at REDIS_URL refused the credentials") from None
    except REDIS_ERRORS as exc:
        await redis.aclose()
        log.debug("Redis ping failed: %s", type(exc).__name__)
        raise CoordinationUnavailable("Redis at REDIS_URL did not answer") from None
    return redis
