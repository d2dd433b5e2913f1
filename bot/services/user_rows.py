"""What the user services share: turning a row into a `UserView` (ADMIN_IDS and expiry applied) and
dropping cached views when a row changes. Each service owns one concern of the users table
(registration, levels, bans, audience); none hands an ORM row to another."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bot.catalog import ModelId
from bot.clock import Clock
from bot.db import SessionFactory
from bot.levels import Level
from bot.services.errors import UserNotFound
from bot.services.user_cache import UserViewCache
from bot.services.user_view import UserView
from models import User

P = ParamSpec("P")
R = TypeVar("R")


class UserRows:
    def __init__(
        self, sessions: SessionFactory, clock: Clock, admin_ids: frozenset[int], cache: UserViewCache | None = None
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.admin_ids = admin_ids
        self.cache = cache if cache is not None else UserViewCache(clock, ttl=0)

    def forget(self, user_id: int) -> None:
        """Drop a cached view: the row changed (every write of a user service calls it)."""
        self.cache.drop(user_id)

    async def load(self, session: AsyncSession, user_id: int, *, for_update: bool = False) -> User:
        user = await session.get(User, user_id, with_for_update=for_update)
        if user is None:
            raise UserNotFound(user_id)
        return user

    def effective_level(self, user: User) -> Level:
        if user.id in self.admin_ids:
            return Level.ADMIN
        if user.level_until is not None and user.level_until <= self.clock.now():
            return Level.USER
        return stored_level(user.level)

    def view(self, user: User) -> UserView:
        try:
            chosen = ModelId(user.chosen_model)
        except ValueError:
            chosen = ModelId.GEMINI_FLASH
        expired = user.level_until is not None and user.level_until <= self.clock.now()
        return UserView(
            id=user.id,
            first_name=user.first_name,
            username=user.username,
            language_code=user.language_code,
            level=self.effective_level(user),
            stored_level=Level.USER if expired else stored_level(user.level),
            level_until=None if expired else user.level_until,
            chosen_model=chosen,
            is_banned=user.is_banned,
            ban_reason=user.ban_reason,
            ban_notified=user.ban_notified,
            blocked_bot=user.blocked_bot,
            is_config_admin=user.id in self.admin_ids,
            created_at=user.created_at,
            private_chat=user.private_chat_at is not None,
        )


class HasRows(Protocol):
    rows: UserRows


S = TypeVar("S", bound=HasRows)


def changes_user(
    method: Callable[Concatenate[S, int, P], Awaitable[R]],
) -> Callable[Concatenate[S, int, P], Awaitable[R]]:
    """The method writes the user's row: drop the cached view before (a stale read must not be served
    meanwhile) and after (a read that raced the write must not stay)."""

    @functools.wraps(method)
    async def wrapper(self: S, user_id: int, /, *args: P.args, **kwargs: P.kwargs) -> R:
        self.rows.forget(user_id)
        try:
            return await method(self, user_id, *args, **kwargs)
        finally:
            self.rows.forget(user_id)

    return wrapper


def stored_level(value: str) -> Level:
    try:
        return Level(value)
    except ValueError:
        return Level.USER
