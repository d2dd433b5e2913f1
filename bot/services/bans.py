"""Bans: set by admins (never on an ADMIN_IDS admin), and the one notice a banned user gets."""

from __future__ import annotations

from sqlalchemy import update

from bot.services.errors import AdminProtected
from bot.services.user_rows import UserRows, changes_user
from bot.services.user_view import UserView
from models import User


class BanService:
    def __init__(self, rows: UserRows) -> None:
        self.rows = rows

    @changes_user
    async def set_ban(self, user_id: int, banned: bool, reason: str | None = None) -> UserView:
        async with self.rows.sessions.begin() as session:
            user = await self.rows.load(session, user_id)
            if banned and user_id in self.rows.admin_ids:
                raise AdminProtected(self.rows.view(user))
            user.is_banned = banned
            user.ban_reason = reason if banned else None
            user.ban_notified = False
            await session.flush()
            return self.rows.view(user)

    @changes_user
    async def claim_ban_notice(self, user_id: int) -> bool:
        """Flag the ban notice as sent; True only for the one caller that flipped it.

        One atomic statement: concurrent updates from a banned user must not each send a notice.
        """
        async with self.rows.sessions.begin() as session:
            rows = await session.execute(
                update(User)
                .where(User.id == user_id, User.is_banned.is_(True), User.ban_notified.is_(False))
                .values(ban_notified=True)
                .returning(User.id)
            )
            return rows.scalar_one_or_none() is not None
