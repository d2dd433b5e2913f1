"""Daily limits: reserve before any provider is called, release when nothing was delivered.

Both are single atomic statements, so any number of concurrent prompts from one user can never
push `used` past the limit (a read-then-write would lose updates).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db import SessionFactory
from bot.levels import Level
from bot.services.sql import insert_for
from models import DailyUsage


@dataclass(frozen=True, slots=True)
class Reservation:
    day: date
    used: int  # including this reservation
    limit: int  # 0 = unlimited

    @property
    def remaining(self) -> int | None:
        return None if self.limit == 0 else max(self.limit - self.used, 0)


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    used: int
    limit: int  # 0 = unlimited
    resets_at: datetime

    @property
    def remaining(self) -> int | None:
        return None if self.limit == 0 else max(self.limit - self.used, 0)

    @property
    def exhausted(self) -> bool:
        return self.limit != 0 and self.used >= self.limit


class QuotaService:
    def __init__(self, sessions: SessionFactory, settings: Settings, clock: Clock) -> None:
        self._sessions = sessions
        self._settings = settings
        self._clock = clock

    def limit_for(self, level: Level) -> int:
        return self._settings.daily_limit(level.value)

    async def reserve(
        self, user_id: int, level: Level, units: int = 1, *, session: AsyncSession | None = None
    ) -> Reservation | None:
        """Take `units` from today's allowance, or return None (and take nothing) if they don't fit.

        Pass `session` to make the reservation part of a larger transaction.
        """
        if session is None:
            async with self._sessions.begin() as own:
                return await self.reserve(user_id, level, units, session=own)
        day = self._clock.today()
        limit = self.limit_for(level)
        if limit and units > limit:
            return None
        stmt = insert_for(session, DailyUsage).values(user_id=user_id, day=day, used=units)
        where = None if limit == 0 else DailyUsage.used + units <= limit
        stmt = stmt.on_conflict_do_update(
            index_elements=[DailyUsage.user_id, DailyUsage.day],
            set_={"used": DailyUsage.used + units},
            where=where,
        ).returning(DailyUsage.used)
        used = (await session.execute(stmt)).scalar_one_or_none()
        if used is None:
            return None
        return Reservation(day=day, used=used, limit=limit)

    async def release(self, user_id: int, day: date, units: int = 1, *, session: AsyncSession | None = None) -> None:
        """Give back units reserved on `day` (the day they were taken, even if it is now tomorrow)."""
        if session is None:
            async with self._sessions.begin() as own:
                return await self.release(user_id, day, units, session=own)
        await session.execute(
            update(DailyUsage)
            .where(DailyUsage.user_id == user_id, DailyUsage.day == day, DailyUsage.used >= units)
            .values(used=DailyUsage.used - units)
        )

    async def status(self, user_id: int, level: Level) -> QuotaStatus:
        day = self._clock.today()
        async with self._sessions() as session:
            used = (
                await session.execute(
                    select(DailyUsage.used).where(DailyUsage.user_id == user_id, DailyUsage.day == day)
                )
            ).scalar_one_or_none()
        return QuotaStatus(used=used or 0, limit=self.limit_for(level), resets_at=self._clock.next_reset())
