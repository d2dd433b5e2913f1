"""Recently read user views, so a command or a button needs no database read.

Under a crowd of prompts the database is the bottleneck; `/help` or a button press from someone seen a
moment ago can be answered from memory. An entry is used only while everything `UserService.register`
checks still holds: the same Telegram profile, `last_seen_at` fresh enough, the same quota day, the
level not yet expired, and at most `ttl` seconds old. Every write through `UserService` drops the
user's entry, so one process is always exact; with several instances a change made on another one
(a level, a ban) shows here within `ttl`. Prompts never read from it (see `UserMiddleware`): what they
charge and which model they use comes from the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cachetools import TLRUCache

from bot.clock import Clock
from bot.services.user_view import Profile, UserView


@dataclass(frozen=True, slots=True)
class _Entry:
    profile: Profile
    view: UserView
    until: float  # timestamp after which the entry is not used


class UserViewCache:
    def __init__(self, clock: Clock, ttl: float, size: int = 10_000) -> None:
        self._clock = clock
        self._ttl = ttl
        self._entries: TLRUCache[int, _Entry] = TLRUCache(
            maxsize=size, ttu=lambda _key, entry, _now: entry.until, timer=self._now
        )

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def get(self, profile: Profile) -> UserView | None:
        entry = self._entries.get(profile.id)
        if entry is None or entry.profile != profile:
            return None
        return entry.view

    def put(self, profile: Profile, view: UserView, last_seen: datetime, seen_refresh: timedelta) -> None:
        """Keep `view` until the first moment `register` would read or write the row again."""
        if not self.enabled or view.is_banned or view.blocked_bot:
            return  # rare, and their middlewares write soon: not worth keeping
        now = self._clock.now()
        deadlines = [now + timedelta(seconds=self._ttl), last_seen + seen_refresh, self._clock.next_reset()]
        if view.level_until is not None:
            deadlines.append(view.level_until)
        until = min(deadlines)
        if until > now:
            self._entries[profile.id] = _Entry(profile, view, until.timestamp())

    def drop(self, user_id: int) -> None:
        self._entries.pop(user_id, None)

    def __len__(self) -> int:
        return len(self._entries)
