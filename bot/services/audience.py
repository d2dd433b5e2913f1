"""Who the bot can message: broadcast recipients, operator-alert contacts, and users who blocked it."""

from __future__ import annotations

from sqlalchemy import or_, select, update

from bot.levels import Level
from bot.services.user_rows import UserRows, changes_user
from models import User


class AudienceService:
    def __init__(self, rows: UserRows) -> None:
        self.rows = rows

    @changes_user
    async def set_blocked(self, user_id: int, blocked: bool) -> None:
        """Telegram said the user blocked the bot (or unblocked it): broadcasts and alerts skip them."""
        async with self.rows.sessions.begin() as session:
            await session.execute(update(User).where(User.id == user_id).values(blocked_bot=blocked))

    async def active_ids(self) -> list[int]:
        """Users who can be messaged: not banned and not known to have blocked the bot."""
        async with self.rows.sessions() as session:
            rows = await session.execute(
                select(User.id).where(User.is_banned.is_(False), User.blocked_bot.is_(False)).order_by(User.id)
            )
            return list(rows.scalars())

    async def admin_contacts(self) -> list[tuple[int, str | None]]:
        """Who hears operator alerts, with their language: ADMIN_IDS (even before they start the bot)
        and users whose level is admin, except banned ones and those who blocked the bot."""
        admin_ids = self.rows.admin_ids
        async with self.rows.sessions() as session:
            rows = await session.execute(
                select(User).where(or_(User.id.in_(admin_ids), User.level == Level.ADMIN.value))
            )
            known = {u.id: u for u in rows.scalars()}
        reachable = [
            (u.id, u.language_code)
            for u in known.values()
            if self.rows.effective_level(u) is Level.ADMIN and not u.is_banned and not u.blocked_bot
        ]
        never_seen: list[tuple[int, str | None]] = [(uid, None) for uid in admin_ids - known.keys()]
        return sorted(reachable + never_seen)
