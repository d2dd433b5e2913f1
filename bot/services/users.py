"""Users: registration on every update (cached), look-ups, and the chosen model. Levels, bans and
the audience are their own services (user_levels, bans, audience) over the same `UserRows`."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from bot.catalog import ModelId
from bot.clock import Clock
from bot.db import SessionFactory
from bot.levels import Level
from bot.services.preferences import Preferences, stored
from bot.services.sql import insert_for
from bot.services.user_cache import UserViewCache
from bot.services.user_rows import UserRows, changes_user
from bot.services.user_view import Profile, UserView
from models import User, UserPreferences

MAX_USER_ID = 2**63 - 1  # BIGINT
SEEN_REFRESH = timedelta(minutes=10)  # how stale last_seen_at may get before an update rewrites it


class UserService:
    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        admin_ids: frozenset[int],
        cache: UserViewCache | None = None,
    ) -> None:
        self.rows = UserRows(sessions, clock, admin_ids, cache)
        self._sessions = sessions
        self._clock = clock
        self._cache = self.rows.cache

    async def register(self, profile: Profile, *, cached: bool = False) -> UserView:
        """Insert or refresh the user and return their current view.

        Runs on every update, so it writes only when something changed or `last_seen_at` is stale:
        a plain read takes no lock, while a write waits for SQLite's single writer. With `cached`, a
        view read moments ago may answer instead (see `UserViewCache`); charging work passes False.
        """
        if cached and (hit := self._cache.get(profile)) is not None:
            return hit
        now = self._clock.now()
        async with self._sessions() as session:
            known = await session.get(User, profile.id)
            if known is not None and self._up_to_date(known, profile, now):
                return self._keep(profile, known)
        async with self._sessions.begin() as session:
            stmt = insert_for(session, User).values(
                id=profile.id,
                username=profile.username,
                first_name=profile.first_name or "",
                last_name=profile.last_name,
                language_code=profile.language_code,
                level=Level.USER.value,
                chosen_model=ModelId.GEMINI_FLASH.value,
                is_banned=False,
                ban_notified=False,
                blocked_bot=False,
                created_at=now,
                last_seen_at=now,
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[User.id],
                set_={
                    "username": stmt.excluded.username,
                    "first_name": stmt.excluded.first_name,
                    "last_name": stmt.excluded.last_name,
                    "language_code": stmt.excluded.language_code,
                    "last_seen_at": now,
                    "blocked_bot": False,
                },
            ).returning(User)
            user = (await session.execute(stmt)).scalar_one()
        return self._keep(profile, user)

    def _keep(self, profile: Profile, user: User) -> UserView:
        view = self.rows.view(user)
        if view.level is not Level.ADMIN:  # an admin's rights are always read fresh
            self._cache.put(profile, view, user.last_seen_at, SEEN_REFRESH)
        return view

    def forget(self, user_id: int) -> None:
        """Drop a cached view: the row changed (every write here calls it)."""
        self.rows.forget(user_id)

    def _up_to_date(self, user: User, profile: Profile, now: datetime) -> bool:
        seen = user.last_seen_at
        return (
            (user.username, user.first_name, user.last_name, user.language_code)
            == (profile.username, profile.first_name or "", profile.last_name, profile.language_code)
            and not user.blocked_bot
            and now - seen < SEEN_REFRESH
            and seen.astimezone(self._clock.tz).date() == self._clock.today()  # "active today" stays exact
        )

    async def get(self, user_id: int) -> UserView | None:
        async with self._sessions() as session:
            user = await session.get(User, user_id)
            return self.rows.view(user) if user else None

    async def get_with_preferences(self, user_id: int) -> tuple[UserView, Preferences] | None:
        """The user and their /settings in one read: a prompt needs both, fresh."""
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(User, UserPreferences)
                    .outerjoin(UserPreferences, UserPreferences.user_id == User.id)
                    .where(User.id == user_id)
                )
            ).first()
            return (self.rows.view(found[0]), stored(found[1])) if found is not None else None

    async def find(self, ref: str) -> UserView | None:
        """Look a user up by numeric id or @username (case-insensitive)."""
        ref = ref.strip()
        # One optional minus sign: "--5" is neither an id nor a username, and int() would refuse it.
        digits = ref.removeprefix("-")
        if digits.isascii() and digits.isdigit():
            # Beyond a 64-bit column no user can exist (the driver would raise OverflowError, and
            # int() itself refuses thousands of digits).
            if len(digits) > len(str(MAX_USER_ID)) or int(digits) > MAX_USER_ID:
                return None
            return await self.get(-int(digits) if ref.startswith("-") else int(digits))
        name = ref.removeprefix("@").lower()
        if not name:
            return None
        async with self._sessions() as session:
            user = (
                await session.execute(select(User).where(func.lower(User.username) == name).limit(1))
            ).scalar_one_or_none()
            return self.rows.view(user) if user else None

    @changes_user
    async def set_model(self, user_id: int, model: ModelId) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(User).where(User.id == user_id).values(chosen_model=model.value))


__all__ = ["Profile", "UserService", "UserView"]
