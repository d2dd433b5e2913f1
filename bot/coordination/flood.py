"""Per-user anti-flood: how many updates a user may send before the rest are dropped unread.

A generic cell rate algorithm (GCRA, as in `ratelimit`) per user: `rate` updates a second, `burst`
at once. An update over the limit is not queued, it is refused; the first refusal in
`NOTICE_EVERY` seconds tells the caller to send one "slow down" notice, the rest are silent.
The memory gate reads an injectable monotonic clock (durations, not dates); the Redis gate
(`redis_flood`) shares the counters between instances.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum
from typing import Protocol

from bot.coordination.ratelimit import Bucket

NOTICE_EVERY = 60.0  # seconds: at most one "slow down" notice per user in this window
MAX_TRACKED_USERS = 10000  # beyond this, users whose bucket is full again are forgotten


class Verdict(Enum):
    PASS = "pass"
    NOTIFY = "notify"  # refused; tell the user once
    DROP = "drop"  # refused; already told


class FloodGate(Protocol):
    async def admit(self, user_id: int) -> Verdict: ...


class MemoryFloodGate:
    """One process's counters: enough when one process takes the updates."""

    def __init__(self, bucket: Bucket, *, now: Callable[[], float] = time.monotonic) -> None:
        self._bucket = bucket
        self._now = now
        self._tat: dict[int, float] = {}
        self._noticed: dict[int, float] = {}  # user -> when the last notice may be repeated

    async def admit(self, user_id: int) -> Verdict:
        now = self._now()
        start, tat = self._bucket.take(now, self._tat.get(user_id))
        if start <= now:
            self._tat[user_id] = tat
            if len(self._tat) > MAX_TRACKED_USERS:
                self._forget_idle(now)
            return Verdict.PASS
        if self._noticed.get(user_id, 0.0) > now:
            return Verdict.DROP
        self._noticed[user_id] = now + NOTICE_EVERY
        return Verdict.NOTIFY

    def _forget_idle(self, now: float) -> None:
        # A bucket whose TAT has passed is full again: the same as one never seen.
        self._tat = {user: tat for user, tat in self._tat.items() if tat > now}
        self._noticed = {user: until for user, until in self._noticed.items() if until > now}
