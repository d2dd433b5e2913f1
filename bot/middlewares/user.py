"""Registers (or refreshes) the sender on every update and hands handlers a resolved `user`;
updates with no human sender are dropped here."""

from __future__ import annotations

from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from aiogram.types import User as TgUser

from bot.middlewares.base import NextHandler
from bot.services.users import Profile, UserService


class UserMiddleware(BaseMiddleware):
    def __init__(self, users: UserService) -> None:
        self._users = users

    async def __call__(self, handler: NextHandler, event: TelegramObject, data: dict[str, Any]) -> Any:
        tg_user: TgUser | None = data.get("event_from_user")
        if tg_user is None or tg_user.is_bot:
            # Channel posts, anonymous group admins, other bots: nobody to serve or to charge.
            return None
        data["user"] = await self._users.register(
            Profile(
                id=tg_user.id,
                first_name=tg_user.first_name,
                username=tg_user.username,
                last_name=tg_user.last_name,
                language_code=tg_user.language_code,
            ),
            cached=True,  # a prompt reads its row again inside the bulk gate (handlers/generate.py)
        )
        return await handler(event, data)
