"""The one source of "now": day boundaries and expiries read the wall clock, durations (cool-downs)
the monotonic one, so a wall-clock step cannot stretch a rest; tests move both."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from time import monotonic as _monotonic
from zoneinfo import ZoneInfo


class Clock:
    """Wall clock in UTC plus the operator's time zone for "today" and the daily reset."""

    def __init__(self, tz: tzinfo | str = "UTC") -> None:
        self.tz: tzinfo = ZoneInfo(tz) if isinstance(tz, str) else tz

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never go backwards: for durations, not dates."""
        return _monotonic()

    def local_now(self) -> datetime:
        return self.now().astimezone(self.tz)

    def today(self) -> date:
        """The quota day in the configured time zone."""
        return self.local_now().date()

    def next_reset(self) -> datetime:
        """When today's quota day ends (local midnight), as an aware datetime in the local zone."""
        tomorrow = self.today() + timedelta(days=1)
        return datetime.combine(tomorrow, time(0, 0), tzinfo=self.tz)


class ManualClock(Clock):
    """A clock that only moves when told to: for tests and simulations."""

    def __init__(self, start: datetime, tz: tzinfo | str = "UTC") -> None:
        super().__init__(tz)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._monotonic = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, delta: timedelta) -> None:
        """Time passes. A negative delta only steps the wall clock back: monotonic time never does."""
        self._now += delta
        self._monotonic += max(delta.total_seconds(), 0.0)

    def set(self, moment: datetime) -> None:
        """Step the wall clock (as NTP or an operator would); monotonic time is unaffected."""
        self._now = moment.astimezone(UTC)
