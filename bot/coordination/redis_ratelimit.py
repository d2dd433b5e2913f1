"""Telegram send pacing shared by every process on a Redis namespace (see bot.coordination.ratelimit).

Each bucket's TAT is one key, taken by a Lua script on Redis server time (microseconds), so the
processes' clocks need not agree; a key expires once its bucket is full again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from bot.coordination.ratelimit import Bucket, SendRates
from bot.coordination.redis_common import REDIS_ERRORS, Degradation, namespaced

log = logging.getLogger(__name__)

MICRO = 1_000_000

# KEYS[1] = the bucket's TAT; ARGV = interval us, tolerance us. Returns the wait in us.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(now, tat - tonumber(ARGV[2]))
local new = math.max(tat, start) + tonumber(ARGV[1])
local ttl_ms = math.ceil((new - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', string.format('%d', ttl_ms))
return start - now
"""


def _micros(bucket: Bucket) -> list[int]:
    return [round(bucket.interval * MICRO), round(bucket.tolerance * MICRO)]


class RedisSendLimiter:
    """`SendRateLimiter` whose buckets live in Redis; if Redis fails, sends go unpaced for a while (logged)."""

    def __init__(
        self,
        redis: Redis,
        namespace: str,
        rates: SendRates,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._namespace = namespace
        self._sleep = sleep
        self._script = redis.register_script(_TAKE)
        self._total_args = _micros(rates.total)
        self._chat_args = _micros(rates.chat)
        self._degraded = Degradation(log, "telegram send pacing")

    async def reserve(self, bot_id: int, chat_id: int | str | None) -> float:
        """Take the next moment in the chat's bucket (or the bot-wide one for None); seconds until it."""
        if self._degraded.skipping:
            return 0.0
        if chat_id is None:
            key, args = namespaced(self._namespace, "tg", str(bot_id), "all"), self._total_args
        else:
            key, args = namespaced(self._namespace, "tg", str(bot_id), "chat", str(chat_id)), self._chat_args
        try:
            waited_us = await self._script(keys=[key], args=args)
        except REDIS_ERRORS as exc:
            self._degraded.failed(exc)
            return 0.0
        return int(waited_us) / MICRO

    async def wait(self, bot_id: int, chat_id: int | str) -> None:
        for scope in (chat_id, None):
            delay = await self.reserve(bot_id, scope)
            if delay > 0:
                await self._sleep(delay)
