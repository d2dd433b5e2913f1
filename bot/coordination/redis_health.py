"""Provider cool-downs in Redis, so every worker skips a resting provider, not only the one that saw it fail.

Per step, `{ns}:health:{key}` holds the failure count and `{ns}:health:{key}:rest` exists while the
step rests: its TTL (PX) is the rest, measured by Redis itself. No process's clock is consulted, so
processes whose clocks disagree (or one whose clock steps back) still see the same rest. An outage
is counted and its pause set in one Lua script, so concurrent failures from several workers neither
lose a count nor cut a longer rest short.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from bot.coordination.redis_common import REDIS_ERRORS, Degradation, namespaced
from bot.services.health import MAX_DOUBLINGS, Backoff

log = logging.getLogger(__name__)

# Garbage collection only: a step nobody touches for a day starts afresh (real seconds).
FORGET_AFTER_SECONDS = 86400

# KEYS = failures hash, rest key; ARGV = threshold, base s, longest s, max doublings, expire s.
# A rest is only ever lengthened here: a 5-minute rest for a bad key outlasts a 30-second outage pause.
_RECORD_OUTAGE = """
local n = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('EXPIRE', KEYS[1], ARGV[5])
local threshold = tonumber(ARGV[1])
if n >= threshold then
  local doublings = math.min(n - threshold, tonumber(ARGV[4]))
  local pause_ms = math.floor(math.min(tonumber(ARGV[2]) * 2 ^ doublings, tonumber(ARGV[3])) * 1000)
  if redis.call('PTTL', KEYS[2]) < pause_ms then
    redis.call('SET', KEYS[2], '1', 'PX', pause_ms)
  end
end
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

    def _rest_key(self, key: str) -> str:
        return namespaced(self._namespace, "health", key, "rest")

    async def resting_for(self, key: str) -> float:
        if self._degraded.skipping:
            return 0.0
        try:
            left_ms = int(await self._redis.pttl(self._rest_key(key)))
        except REDIS_ERRORS as exc:
            self._degraded.failed(exc)
            return 0.0
        return left_ms / 1000 if left_ms > 0 else 0.0  # -2: no rest; -1 (no TTL) cannot happen

    async def forget(self, key: str) -> None:
        if self._degraded.skipping:
            return
        try:
            await self._redis.delete(self._key(key), self._rest_key(key))
        except REDIS_ERRORS as exc:
            self._degraded.failed(exc)

    async def rest(self, key: str, seconds: float) -> None:
        if self._degraded.skipping:
            return
        try:
            await self._redis.set(self._rest_key(key), "1", px=max(int(seconds * 1000), 1))
        except REDIS_ERRORS as exc:
            self._degraded.failed(exc)

    async def record_outage(self, key: str, backoff: Backoff) -> None:
        if self._degraded.skipping:
            return
        args: list[str | int | float] = [
            backoff.threshold,
            backoff.base,
            backoff.longest,
            MAX_DOUBLINGS,
            FORGET_AFTER_SECONDS,
        ]
        try:
            await self._record_outage(keys=[self._key(key), self._rest_key(key)], args=args)
        except REDIS_ERRORS as exc:
            self._degraded.failed(exc)
