"""Provider cool-downs: a step that keeps failing is skipped for a while instead of making every
user wait out its timeout. Reads the injectable clock, so tests move time instead of sleeping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.providers.base import ErrorKind

# Failures that say "this service is in trouble right now", not "this prompt was bad".
OUTAGE = frozenset({ErrorKind.UNAVAILABLE, ErrorKind.TIMEOUT})
IMMEDIATE = {ErrorKind.RATE_LIMITED: timedelta(seconds=60), ErrorKind.AUTH: timedelta(minutes=5)}


@dataclass(slots=True)
class _State:
    failures: int = 0
    until: datetime | None = None


class ProviderHealth:
    """In memory on purpose: after a restart every provider deserves a fresh try."""

    def __init__(
        self,
        clock: Clock,
        threshold: int = 3,
        base: timedelta = timedelta(seconds=30),
        longest: timedelta = timedelta(minutes=10),
    ) -> None:
        self._clock = clock
        self._threshold = threshold
        self._base = base
        self._longest = longest
        self._states: dict[str, _State] = {}

    def cooling_down(self, key: str) -> bool:
        state = self._states.get(key)
        return state is not None and state.until is not None and self._clock.now() < state.until

    def succeeded(self, key: str) -> None:
        self._states.pop(key, None)

    def failed(self, key: str, kind: ErrorKind) -> None:
        state = self._states.setdefault(key, _State())
        if kind in IMMEDIATE:
            state.until = self._clock.now() + IMMEDIATE[kind]
            return
        if kind not in OUTAGE:
            return
        state.failures += 1
        if state.failures >= self._threshold:
            # 30 s, 60 s, 120 s ... while the outage lasts, capped.
            pause = min(self._base * 2 ** (state.failures - self._threshold), self._longest)
            state.until = self._clock.now() + pause
