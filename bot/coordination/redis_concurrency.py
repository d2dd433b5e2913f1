"""A distributed semaphore per chain step, so the cap holds across every worker process.

Each key is a sorted set of holder tokens scored by when their claim expires (Redis server time, so
the workers' clocks need not agree). Taking a slot is one Lua script: drop expired holders, then add
this one if the set is under the limit. A holder renews its claim while it works, so a process that
dies mid-call frees its slot after `ttl` at most; waiters poll with growing, jittered sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from redis.asyncio import Redis

from bot.coordination.concurrency import active_limits
from bot.coordination.redis_common import REDIS_ERRORS, Degradation, namespaced, stop_if_cancelled

log = logging.getLogger(__name__)

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS[1] = holders; ARGV = limit, token, ttl ms. 1 when the token holds a slot.
_ACQUIRE = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 1 end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
"""
)

# KEYS[1] = holders; ARGV = token, ttl ms. 0 when the claim was already given away.
_RENEW = (
    _NOW_MS
    + """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
)


class RedisConcurrency:
    """`ConcurrencyLimiter` shared by every process on the same Redis namespace.

    Every process should be configured with the same limits: each enforces its own number against
    the shared set. If Redis fails, the call goes ahead unlimited (logged) rather than not at all.
    """

    def __init__(
        self,
        redis: Redis,
        namespace: str,
        limits: Mapping[str, int],
        ttl: float = 30.0,
        *,
        poll_min: float = 0.05,
        poll_max: float = 0.5,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self._redis = redis
        self._namespace = namespace
        self._limits = active_limits(limits)
        self._ttl_ms = max(int(ttl * 1000), 1)
        self._renew_every = ttl / 3
        self._poll_min = poll_min
        self._poll_max = max(poll_max, poll_min)
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._degraded = Degradation(log, "provider concurrency")

    def _key(self, key: str) -> str:
        return namespaced(self._namespace, "slots", key)

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        limit = self._limits.get(key)
        if limit is None or self._degraded.skipping:
            yield
            return
        name = self._key(key)
        token = uuid.uuid4().hex
        try:
            held = await self._wait_for_slot(name, token, limit)
        except asyncio.CancelledError:
            await self._release(name, token)  # the script may have run before the cancel landed
            raise
        renewer = asyncio.create_task(self._keep_renewing(name, token)) if held else None
        try:
            yield
        finally:
            if renewer is not None:
                renewer.cancel()
                await asyncio.wait([renewer])
            await self._release(name, token)

    async def _wait_for_slot(self, name: str, token: str, limit: int) -> bool:
        """True once the token holds a slot; False when Redis failed and the call goes unlimited."""
        delay = self._poll_min
        while True:
            try:
                if await self._acquire(keys=[name], args=[limit, token, self._ttl_ms]):
                    return True
            except REDIS_ERRORS as exc:
                stop_if_cancelled()
                self._degraded.failed(exc)
                return False
            stop_if_cancelled()
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._poll_max)

    async def _keep_renewing(self, name: str, token: str) -> None:
        while True:
            await asyncio.sleep(self._renew_every)
            try:
                if not await self._renew(keys=[name], args=[token, self._ttl_ms]):
                    log.warning("concurrency slot %s expired while held (stalled for longer than its ttl?)", name)
                    return
            except REDIS_ERRORS as exc:
                self._degraded.failed(exc)
            stop_if_cancelled()

    async def _release(self, name: str, token: str) -> None:
        try:
            await self._redis.zrem(name, token)
        except REDIS_ERRORS as exc:
            self._degraded.failed(exc)  # the claim expires by itself after ttl
