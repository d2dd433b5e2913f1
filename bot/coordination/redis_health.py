"""Provider cool-downs in Redis, so every worker skips a resting provider, not only the one that saw it fail.

One hash per step (`{ns}:health:{key}`) with `failures` and `until` (epoch seconds from the
injectable clock). An outage is counted and its pause set in one Lua script, so concurrent failures
from several workers neither lose a count nor overwrite a longer pause with a shorter one.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from bot.coordination.redis_common import REDIS_ERRORS, Degradation, namespaced
from bot.services.health import MAX_DOUBLINGS, Backoff

log = logging.getLogger(__name__)

# Garbage collection only: a step nobody touches for a day starts afresh (real seconds).
FORGET_AFTER_SECONDS = 86400

# KEYS[1] = hash; ARGV = now, threshold, base, longest, max doublings, expire seconds
_RECORD_OUTAGE = """
local n = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local threshold = tonumber(ARGV[2])
if n >= threshold then
  local doublings = math.min(n - threshold, tonumber(ARGV[5]))
  local pause = math.min(tonumber(ARGV[3]) * 2 ^ doublings, tonumber(ARGV[4]))
  redis.call('HSET', KEYS[1], 'until', string.format('%.6f', tonumber(ARGV[1]) + pause))
end
redis.call('EXPIRE', KEYS[1], ARGV[6])
return n
"""


class RedisHealthStore:
    """`HealthStore` shared through Redis; a Redis failure reads as "not resting" (advisory state)."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self._redis = redis
        self._namespace = namespace
        self._record_outage = redis.register_script(_RECORD_OUTAGE)
        self._degraded = Degradation(log, "provider health")

    def _key(self, key: str) -> str:
        return namespaced(self._namespace, "health", key)

    async def resting_until(self, key: str) -> float | None:
        if self._degraded.skipping:
            return None
        try:
            until = await self._redis.hget(self._key(key), "until")
        except REDIS_ERRORS as exc:
            self._degraded.failed(exc)
            return None
        return float(until) if until is not None else None

    async def forget(self, key: str) -> None:
        if self._degraded.skipping:
            return
        try:
            await self._redis.delete(self._key(key))
        except REDIS_ERRORS as exc:
            self._degraded.failed(exc)

    async def rest(self, key: str, until: float) -> None:
        if self._degraded.skipping:
            return
        name = self._key(key)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(name, "until", f"{until:.6f}")
                pipe.expire(name, FORGET_AFTER_SECONDS)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            self._degraded.failed(exc)

    async def record_outage(self, key: str, now: float, backoff: Backoff) -> None:
        if self._degraded.skipping:
            return
        args: list[str | int | float] = [
            f"{now:.6f}",
            backoff.threshold,
            backoff.base,
            backoff.longest,
            MAX_DOUBLINGS,
            FORGET_AFTER_SECONDS,
        ]
        try:
            await self._record_outage(keys=[self._key(key)], args=args)
        except REDIS_ERRORS as exc:
            self._degraded.failed(exc)
