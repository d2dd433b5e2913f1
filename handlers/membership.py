"""my_chat_member: keep "this user blocked the bot" current, so broadcasts skip them."""

from __future__ import annotations

from aiogram import Router
from aiogram.enums import ChatType
from aiogram.types import ChatMemberUpdated

from bot.services.users import UserService


def router_factory() -> Router:
    router = Router(name="membership")
    router.my_chat_member.register(on_my_chat_member)
    return router


async def on_my_chat_member(event: ChatMemberUpdated, users: UserService) -> None:
    if event.chat.type != ChatType.PRIVATE:
        return
    blocked = event.new_chat_member.status in ("kicked", "left")
    await users.set_blocked(event.from_user.id, blocked)
