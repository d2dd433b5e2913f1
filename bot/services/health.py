"""Provider cool-downs: a step that keeps failing is skipped for a while instead of making every
user wait out its timeout.

Rests are durations, so they are measured on a monotonic clock (the injectable clock's, so tests move
it): a wall-clock step backwards must not stretch a one-minute rest into an hour.

The policy (which failures count, how long to rest) lives here; the state lives in a `HealthStore`:
in memory for a single process, in Redis (bot.coordination.redis_health) when several workers must
agree that a provider is resting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bot.clock import Clock
from bot.providers.base import ErrorKind

# Failures that say "this service is in trouble right now", not "this prompt was bad".
OUTAGE = frozenset({ErrorKind.UNAVAILABLE, ErrorKind.TIMEOUT})
IMMEDIATE = {ErrorKind.RATE_LIMITED: timedelta(seconds=60), ErrorKind.AUTH: timedelta(minutes=5)}
MAX_DOUBLINGS = 30  # beyond this the pause is capped anyway; keeps 2**n from overflowing a timedelta


@dataclass(frozen=True, slots=True)
class Backoff:
    """After `threshold` outages in a row: base, 2*base, 4*base ... capped at `longest` (seconds)."""

    threshold: int
    base: float
    longest: float

    def pause(self, failures: int) -> float | None:
        """Seconds to rest after the n-th failure in a row, or None below the threshold."""
        if failures < self.threshold:
            return None
        return float(min(self.base * 2 ** min(failures - self.threshold, MAX_DOUBLINGS), self.longest))


class HealthStore(Protocol):
    """Where cool-downs live. Every time is a duration in seconds from "now", as the store measures it."""

    async def resting_for(self, key: str) -> float:
        """Seconds the step still rests; 0 when it does not."""
        ...

    async def forget(self, key: str) -> None: ...

    async def rest(self, key: str, seconds: float) -> None:
        """Rest for `seconds` from now, whatever was set before; keeps the failure count."""

    async def record_outage(self, key: str, backoff: Backoff) -> None:
        """Count one more outage and, past the threshold, rest per `backoff` — as one atomic step."""


@dataclass(slots=True)
class _State:
    failures: int = 0
    until: float | None = None  # on the store's monotonic clock


class MemoryHealthStore:
    """One process's view: after a restart every provider deserves a fresh try."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._now = monotonic
        self._states: dict[str, _State] = {}

    async def resting_for(self, key: str) -> float:
        state = self._states.get(key)
        if state is None or state.until is None:
            return 0.0
        return max(state.until - self._now(), 0.0)

    async def forget(self, key: str) -> None:
        self._states.pop(key, None)

    async def rest(self, key: str, seconds: float) -> None:
        self._states.setdefault(key, _State()).until = self._now() + seconds

    async def record_outage(self, key: str, backoff: Backoff) -> None:
        state = self._states.setdefault(key, _State())
        state.failures += 1
        pause = backoff.pause(state.failures)
        if pause is not None:
            state.until = self._now() + pause


class ProviderHealth:
    """Decides from each attempt's outcome whether a step should rest; the store shares the verdict."""

    def __init__(
        self,
        clock: Clock,
        threshold: int = 3,
        base: timedelta = timedelta(seconds=30),
        longest: timedelta = timedelta(minutes=10),
        *,
        store: HealthStore | None = None,
    ) -> None:
        self._backoff = Backoff(threshold, base.total_seconds(), longest.total_seconds())
        self._store: HealthStore = store if store is not None else MemoryHealthStore(clock.monotonic)

    async def cooling_down(self, key: str) -> bool:
        return await self._store.resting_for(key) > 0

    async def resting_for(self, key: str) -> float:
        """Seconds the step still rests (0 when available): what /metrics shows."""
        return await self._store.resting_for(key)

    async def succeeded(self, key: str) -> None:
        await self._store.forget(key)

    async def failed(self, key: str, kind: ErrorKind) -> None:
        if kind in IMMEDIATE:
            await self._store.rest(key, IMMEDIATE[kind].total_seconds())
        elif kind in OUTAGE:
            # 30 s, 60 s, 120 s ... while the outage lasts, capped.
            await self._store.record_outage(key, self._backoff)
