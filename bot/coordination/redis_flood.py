"""Per-user anti-flood shared by every instance on a Redis namespace (see bot.coordination.flood).

One Lua script per update: the user's TAT key and the "already told" key, both expiring by
themselves. Time is the injectable clock's, in milliseconds, passed in (instances' clocks agree to
well under a second, far finer than a flood limit).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from redis.asyncio import Redis

from bot.coordination.flood import NOTICE_EVERY, Verdict
from bot.coordination.ratelimit import Bucket
from bot.coordination.redis_common import REDIS_ERRORS, Degradation, namespaced

log = logging.getLogger(__name__)

# KEYS: the user's TAT, when the user may be told again. ARGV: now, interval, tolerance, notice window (ms).
# Returns 0 pass, 1 refused and tell, 2 refused silently.
_ADMIT = """
local now = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat - tonumber(ARGV[3]) > now then
  if tonumber(redis.call('GET', KEYS[2]) or '0') > now then
    return 2
  end
  redis.call('SET', KEYS[2], string.format('%.0f', now + tonumber(ARGV[4])), 'PX', ARGV[4])
  return 1
end
local new = math.max(tat, now) + tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', string.format('%d', new - now + 1000))
return 0
"""
_VERDICTS = {0: Verdict.PASS, 1: Verdict.NOTIFY, 2: Verdict.DROP}


class RedisFloodGate:
    """`FloodGate` in Redis; if Redis fails, updates pass unchecked for a while (logged)."""

    def __init__(self, redis: Redis, namespace: str, bucket: Bucket, now: Callable[[], float]) -> None:
        """`now`: seconds on a clock every instance shares (the injectable wall clock)."""
        self._namespace = namespace
        self._now = now
        self._script = redis.register_script(_ADMIT)
        self._args = [round(bucket.interval * 1000), round(bucket.tolerance * 1000), round(NOTICE_EVERY * 1000)]
        self._degraded = Degradation(log, "anti-flood")

    async def admit(self, user_id: int) -> Verdict:
        if self._degraded.skipping:
            return Verdict.PASS
        keys = [
            namespaced(self._namespace, "flood", str(user_id)),
            namespaced(self._namespace, "flood-told", str(user_id)),
        ]
        interval, tolerance, notice = self._args
        try:
            answer = await self._script(keys=keys, args=[round(self._now() * 1000), interval, tolerance, notice])
        except REDIS_ERRORS as exc:
            self._degraded.failed(exc)
            return Verdict.PASS
        return _VERDICTS[int(answer)]
