"""Users: registration on every update, effective level (ADMIN_IDS, expiry), chosen model."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import func, or_, select, update

from bot.catalog import ModelId
from bot.clock import Clock
from bot.db import SessionFactory
from bot.levels import Level
from bot.services.errors import AdminProtected, UserNotFound
from bot.services.sql import insert_for
from bot.services.user_cache import UserViewCache
from bot.services.user_view import Profile, UserView
from models import User

MAX_USER_ID = 2**63 - 1  # BIGINT
P = ParamSpec("P")
R = TypeVar("R")
SEEN_REFRESH = timedelta(minutes=10)  # how stale last_seen_at may get before an update rewrites it


def _changes_user(
    method: Callable[Concatenate[UserService, int, P], Awaitable[R]],
) -> Callable[Concatenate[UserService, int, P], Awaitable[R]]:
    """The method writes the user's row: drop the cached view before (a stale read must not be served
    meanwhile) and after (a read that raced the write must not stay)."""

    @functools.wraps(method)
    async def wrapper(self: UserService, user_id: int, /, *args: P.args, **kwargs: P.kwargs) -> R:
        self.forget(user_id)
        try:
            return await method(self, user_id, *args, **kwargs)
        finally:
            self.forget(user_id)

    return wrapper


class UserService:
    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        admin_ids: frozenset[int],
        cache: UserViewCache | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._admin_ids = admin_ids
        self._cache = cache if cache is not None else UserViewCache(clock, ttl=0)

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
        view = self.view(user)
        if view.level is not Level.ADMIN:  # an admin's rights are always read fresh
            self._cache.put(profile, view, user.last_seen_at, SEEN_REFRESH)
        return view

    def forget(self, user_id: int) -> None:
        """Drop a cached view: the row changed (every write here calls it)."""
        self._cache.drop(user_id)

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
            return self.view(user) if user else None

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
            return self.view(user) if user else None

    @_changes_user
    async def set_model(self, user_id: int, model: ModelId) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(User).where(User.id == user_id).values(chosen_model=model.value))

    @_changes_user
    async def set_level(self, user_id: int, level: Level, days: int | None = None) -> UserView:
        """Grant a level, for `days` (then back to `user` by itself) or without end. `user` clears expiry."""
        until = self._clock.now() + timedelta(days=days) if days and level is not Level.USER else None
        async with self._sessions.begin() as session:
            user = await session.get(User, user_id)
            if user is None:
                raise UserNotFound(user_id)
            if user_id in self._admin_ids and level is not Level.ADMIN:
                raise AdminProtected(self.view(user))
            user.level = level.value
            user.level_until = until
            user.expiry_warned_for = None
            await session.flush()
            return self.view(user)

    @_changes_user
    async def extend_subscription(self, user_id: int, days: int) -> UserView:
        """Add paid days: from the current expiry if still running, else from now. Admins keep their level."""
        async with self._sessions.begin() as session:
            user = await session.get(User, user_id, with_for_update=True)
            if user is None:
                raise UserNotFound(user_id)
            self.apply_days(user, days)
            await session.flush()
            return self.view(user)

    def apply_days(self, user: User, days: int) -> None:
        now = self._clock.now()
        level = self.effective_level(user)
        if level is Level.ADMIN or (level is Level.SUBSCRIBER and user.level_until is None):
            return  # unlimited already: nothing to extend or take back
        start = user.level_until if level is Level.SUBSCRIBER and user.level_until else now
        until = start + timedelta(days=days)
        if until <= now:
            user.level, user.level_until = Level.USER.value, None
        else:
            user.level, user.level_until = Level.SUBSCRIBER.value, until
        user.expiry_warned_for = None

    @_changes_user
    async def set_ban(self, user_id: int, banned: bool, reason: str | None = None) -> UserView:
        async with self._sessions.begin() as session:
            user = await session.get(User, user_id)
            if user is None:
                raise UserNotFound(user_id)
            if banned and user_id in self._admin_ids:
                raise AdminProtected(self.view(user))
            user.is_banned = banned
            user.ban_reason = reason if banned else None
            user.ban_notified = False
            await session.flush()
            return self.view(user)

    @_changes_user
    async def claim_ban_notice(self, user_id: int) -> bool:
        """Flag the ban notice as sent; True only for the one caller that flipped it.

        One atomic statement: concurrent updates from a banned user must not each send a notice.
        """
        async with self._sessions.begin() as session:
            rows = await session.execute(
                update(User)
                .where(User.id == user_id, User.is_banned.is_(True), User.ban_notified.is_(False))
                .values(ban_notified=True)
                .returning(User.id)
            )
            return rows.scalar_one_or_none() is not None

    async def expiring_soon(self, within: timedelta) -> list[UserView]:
        """Subscribers whose level ends within `within` and who have not been warned for that end yet."""
        now = self._clock.now()
        async with self._sessions() as session:
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
            return [self.view(u) for u in users]

    async def claim_expiry_warning(self, user_id: int, until: datetime) -> bool:
        """Record that the warning for this end date is being sent; True only for the one caller
        that recorded it, so two overlapping checks never warn twice."""
        async with self._sessions.begin() as session:
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

    @_changes_user
    async def set_blocked(self, user_id: int, blocked: bool) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(User).where(User.id == user_id).values(blocked_bot=blocked))

    async def active_ids(self) -> list[int]:
        """Users who can be messaged: not banned and not known to have blocked the bot."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(User.id).where(User.is_banned.is_(False), User.blocked_bot.is_(False)).order_by(User.id)
            )
            return list(rows.scalars())

    async def expire_levels(self) -> list[tuple[int, Level]]:
        """Persist expiries whose time has come; return who fell back to `user`, and from which level."""
        now = self._clock.now()
        due = (User.level_until.is_not(None), User.level_until <= now, User.level != Level.USER.value)
        async with self._sessions.begin() as session:
            # FOR UPDATE: on PostgreSQL a concurrent pass waits, then no longer sees these rows.
            rows = (await session.execute(select(User.id, User.level).where(*due).with_for_update())).all()
            if rows:
                await session.execute(
                    update(User)
                    .where(User.id.in_([r.id for r in rows]))
                    .values(level=Level.USER.value, level_until=None)
                )
        for row in rows:
            self.forget(row.id)
        return [(r.id, _level(r.level)) for r in rows]

    async def admin_contacts(self) -> list[tuple[int, str | None]]:
        """Who hears operator alerts, with their language: ADMIN_IDS (even before they start the bot)
        and users whose level is admin, except banned ones and those who blocked the bot."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(User).where(or_(User.id.in_(self._admin_ids), User.level == Level.ADMIN.value))
            )
            known = {u.id: u for u in rows.scalars()}
        reachable = [
            (u.id, u.language_code)
            for u in known.values()
            if self.effective_level(u) is Level.ADMIN and not u.is_banned and not u.blocked_bot
        ]
        never_seen: list[tuple[int, str | None]] = [(uid, None) for uid in self._admin_ids - known.keys()]
        return sorted(reachable + never_seen)

    def effective_level(self, user: User) -> Level:
        if user.id in self._admin_ids:
            return Level.ADMIN
        stored = _level(user.level)
        if user.level_until is not None and user.level_until <= self._clock.now():
            return Level.USER
        return stored

    def view(self, user: User) -> UserView:
        try:
            chosen = ModelId(user.chosen_model)
        except ValueError:
            chosen = ModelId.GEMINI_FLASH
        expired = user.level_until is not None and user.level_until <= self._clock.now()
        return UserView(
            id=user.id,
            first_name=user.first_name,
            username=user.username,
            language_code=user.language_code,
            level=self.effective_level(user),
            stored_level=Level.USER if expired else _level(user.level),
            level_until=None if expired else user.level_until,
            chosen_model=chosen,
            is_banned=user.is_banned,
            ban_reason=user.ban_reason,
            ban_notified=user.ban_notified,
            blocked_bot=user.blocked_bot,
            is_config_admin=user.id in self._admin_ids,
            created_at=user.created_at,
        )


def _level(value: str) -> Level:
    try:
        return Level(value)
    except ValueError:
        return Level.USER


__all__ = ["Profile", "UserService", "UserView"]
