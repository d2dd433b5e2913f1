"""Who has a private chat with the bot: inline mode uploads a user's image there before it replaces
the inline message, and Telegram lets a bot write only to users who started it.

An inline query registers its sender like any update, so a user row alone proves nothing: the first
private message stamps `users.private_chat_at` (bot/middlewares/private_chat.py).
"""

from __future__ import annotations

from cachetools import LRUCache
from sqlalchemy import select, update

from bot.clock import Clock
from bot.db import SessionFactory
from models import User

REMEMBERED = 100_000  # user ids this process knows are stamped: no write for their next messages


class PrivateChats:
    def __init__(self, sessions: SessionFactory, clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock
        self._stamped: LRUCache[int, bool] = LRUCache(REMEMBERED)

    async def started(self, user_id: int) -> bool:
        """True once the user has written to the bot in private (so the bot may write to them)."""
        if user_id in self._stamped:
            return True
        async with self._sessions() as session:
            stamped = await session.scalar(select(User.private_chat_at).where(User.id == user_id))
        if stamped is not None:
            self._stamped[user_id] = True
        return stamped is not None

    async def note(self, user_id: int) -> None:
        """A private message from the user: stamp the row once (later calls cost nothing here)."""
        if user_id in self._stamped:
            return
        async with self._sessions.begin() as session:
            await session.execute(
                update(User)
                .where(User.id == user_id, User.private_chat_at.is_(None))
                .values(private_chat_at=self._clock.now())
            )
        self._stamped[user_id] = True
