"""Levels over time: granted by admins, bought with days, warned about before they end, and
expired by a sweep so /profile and the limits never trust a stale row."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.levels import Level
from bot.services.errors import AdminProtected
from bot.services.user_rows import UserRows, changes_user, stored_level
from bot.services.user_view import UserView
from models import User


class LevelService:
    def __init__(self, rows: UserRows) -> None:
        self.rows = rows

    @changes_user
    async def set_level(self, user_id: int, level: Level, days: int | None = None) -> UserView:
        """Grant a level, for `days` (then back to `user` by itself) or without end. `user` clears expiry."""
        until = self.rows.clock.now() + timedelta(days=days) if days and level is not Level.USER else None
        async with self.rows.sessions.begin() as session:
            user = await self.rows.load(session, user_id)
            if user_id in self.rows.admin_ids and level is not Level.ADMIN:
                raise AdminProtected(self.rows.view(user))
            user.level = level.value
            user.level_until = until
            user.expiry_warned_for = None
            await session.flush()
            return self.rows.view(user)

    async def add_days(self, session: AsyncSession, user_id: int, days: int) -> UserView:
        """Paid days (negative: taken back by a refund), in the caller's transaction so the payment
        row and the level change commit together. From the current end if it is still running, else
        from now; unlimited levels (admins, subscribers without end) stay as they are."""
        user = await self.rows.load(session, user_id, for_update=bool(days))
        if not days:
            return self.rows.view(user)
        self.rows.forget(user_id)  # and again by the caller after its commit (see PaymentService)
        now = self.rows.clock.now()
        level = self.rows.effective_level(user)
        if not (level is Level.ADMIN or (level is Level.SUBSCRIBER and user.level_until is None)):
            start = user.level_until if level is Level.SUBSCRIBER and user.level_until else now
            until = start + timedelta(days=days)
            if until <= now:
                user.level, user.level_until = Level.USER.value, None
            else:
                user.level, user.level_until = Level.SUBSCRIBER.value, until
            user.expiry_warned_for = None
            await session.flush()
        return self.rows.view(user)

    async def expiring_soon(self, within: timedelta) -> list[UserView]:
        """Subscribers whose level ends within `within` and who have not been warned for that end yet."""
        now = self.rows.clock.now()
        async with self.rows.sessions() as session:
            rows = await session.execute(
                select(User).where(
                    User.level == Level.SUBSCRIBER.value,
                    User.level_until.is_not(None),
                    User.level_until > now,
                    User.level_until <= now + within,
                    User.is_banned.is_(False),
                )
            )
            users = [u for u in rows.scalars() if u.expiry_warned_for != u.level_until]
            return [self.rows.view(u) for u in users]

    async def claim_expiry_warning(self, user_id: int, until: datetime) -> bool:
        """Record that the warning for this end date is being sent; True only for the one caller
        that recorded it, so two overlapping checks never warn twice."""
        async with self.rows.sessions.begin() as session:
            rows = await session.execute(
                update(User)
                .where(
                    User.id == user_id,
                    User.level_until == until,
                    or_(User.expiry_warned_for.is_(None), User.expiry_warned_for != until),
                )
                .values(expiry_warned_for=until)
                .returning(User.id)
            )
            return rows.scalar_one_or_none() is not None

    async def expire_levels(self) -> list[tuple[int, Level]]:
        """Persist expiries whose time has come; return who fell back to `user`, and from which level."""
        now = self.rows.clock.now()
        due = (User.level_until.is_not(None), User.level_until <= now, User.level != Level.USER.value)
        async with self.rows.sessions.begin() as session:
            # FOR UPDATE: on PostgreSQL a concurrent pass waits, then no longer sees these rows.
            rows = (await session.execute(select(User.id, User.level).where(*due).with_for_update())).all()
            if rows:
                await session.execute(
                    update(User)
                    .where(User.id.in_([r.id for r in rows]))
                    .values(level=Level.USER.value, level_until=None)
                )
        for row in rows:
            self.rows.forget(row.id)
        return [(r.id, stored_level(r.level)) for r in rows]
