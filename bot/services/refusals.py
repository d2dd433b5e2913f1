"""Refused generations as operators see them: a user's count today, and the once-a-day alert claim.

The alert state lives on the user's row (`refusal_alert_day`), so "once that day" holds across
restarts and between processes. Nothing here knows Telegram.
"""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import func, or_, select, update

from bot.clock import Clock
from bot.db import SessionFactory
from models import Generation, GenerationStatus, User


class RefusalService:
    def __init__(self, sessions: SessionFactory, clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    def start_of_today(self) -> datetime:
        """Midnight of the quota day (TIMEZONE), the boundary "today" is counted from."""
        return datetime.combine(self._clock.today(), time(0, 0), tzinfo=self._clock.tz)

    async def today(self, user_id: int) -> int:
        """The user's refused generations since the quota day began."""
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Generation)
                .where(
                    Generation.user_id == user_id,
                    Generation.status == GenerationStatus.REFUSED,
                    Generation.created_at >= self.start_of_today(),
                )
            )
            return int(count or 0)

    async def claim_alert(self, user_id: int) -> bool:
        """Record that today's alert about this user is being sent; True only for the one caller that
        recorded it (one atomic statement), so two workers never both alert."""
        today = self._clock.today()
        async with self._sessions.begin() as session:
            rows = await session.execute(
                update(User)
                .where(
                    User.id == user_id,
                    or_(User.refusal_alert_day.is_(None), User.refusal_alert_day != today),
                )
                .values(refusal_alert_day=today)
                .returning(User.id)
            )
            return rows.scalar_one_or_none() is not None
