"""Pacing of messages to Telegram: about 30 per second per bot, and about one per second per chat.

A generic cell rate algorithm (GCRA) per bucket: each bucket keeps a "theoretical arrival time"
(TAT); a send may go at `TAT - tolerance`, and going moves the TAT one interval on. A send first
reserves its moment in its chat's bucket and sleeps until then, and only then reserves the
bot-wide bucket: a chat with a long queue never holds bot-wide slots it cannot use yet, so other
chats do not wait behind it. Waiters queue in reservation order without polling.

Rates are about real time, so the memory backend reads the monotonic clock, not the injectable day
clock (the Redis backend reads Redis server time).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

MAX_TRACKED_CHATS = 10000  # beyond this, chats whose bucket is full again are forgotten


@dataclass(frozen=True, slots=True)
class Bucket:
    """`rate` sends per second, up to `burst` at once when the bucket is full."""

    rate: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a bucket needs rate > 0 and burst >= 1")

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    @property
    def tolerance(self) -> float:
        return self.interval * (self.burst - 1)

    def take(self, now: float, tat: float | None) -> tuple[float, float]:
        """The earliest moment a send may go, and the bucket's TAT once it has."""
        start = now if tat is None else max(now, tat - self.tolerance)
        return start, max(tat if tat is not None else start, start) + self.interval


@dataclass(frozen=True, slots=True)
class SendRates:
    """The bot-wide bucket and the bucket every chat gets."""

    total: Bucket
    chat: Bucket

    @classmethod
    def of(cls, rate: float, chat_rate: float, chat_burst: int, burst: int = 1) -> SendRates:
        """`burst` 1 by default: spacing sends evenly keeps any one second under Telegram's cap."""
        return cls(Bucket(rate, burst), Bucket(chat_rate, chat_burst))


class SendRateLimiter(Protocol):
    async def wait(self, bot_id: int, chat_id: int | str) -> None:
        """Return when a message from `bot_id` to `chat_id` may go out."""
        ...


class MemorySendLimiter:
    """One process's buckets; enough when a single process talks to Telegram."""

    def __init__(
        self,
        rates: SendRates,
        *,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._rates = rates
        self._now = now
        self._sleep = sleep
        self._total: dict[int, float] = {}
        self._chats: dict[tuple[int, str], float] = {}

    def reserve(self, bot_id: int, chat_id: int | str | None) -> float:
        """Take the next moment in the chat's bucket (or the bot-wide one for None); seconds until it."""
        now = self._now()
        if chat_id is None:
            start, self._total[bot_id] = self._rates.total.take(now, self._total.get(bot_id))
            return start - now
        chat = (bot_id, str(chat_id))
        start, self._chats[chat] = self._rates.chat.take(now, self._chats.get(chat))
        if len(self._chats) > MAX_TRACKED_CHATS:
            self._forget_idle(now)
        return start - now

    async def wait(self, bot_id: int, chat_id: int | str) -> None:
        for scope in (chat_id, None):
            delay = self.reserve(bot_id, scope)
            if delay > 0:
                await self._sleep(delay)

    def _forget_idle(self, now: float) -> None:
        # A bucket whose TAT has passed is full again: the same as one never seen.
        self._chats = {chat: tat for chat, tat in self._chats.items() if tat > now}
