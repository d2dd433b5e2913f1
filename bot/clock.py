"""The one source of "now": day boundaries, expiries and cool-downs all read it, so tests move time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo


class Clock:
    """Wall clock in UTC plus the operator's time zone for "today" and the daily reset."""

    def __init__(self, tz: tzinfo | str = "UTC") -> None:
        self.tz: tzinfo = ZoneInfo(tz) if isinstance(tz, str) else tz

    def now(self) -> datetime:
        return datetime.now(UTC)

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

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(UTC)
