"""my_chat_member: keep "this user blocked the bot" current, so broadcasts skip them."""

from __future__ import annotations

from aiogram import Router
from aiogram.enums import ChatType
from aiogram.types import ChatMemberUpdated

from bot.services.audience import AudienceService


def router_factory() -> Router:
    router = Router(name="membership")
    router.my_chat_member.register(on_my_chat_member)
    return router


async def on_my_chat_member(event: ChatMemberUpdated, audience: AudienceService) -> None:
    if event.chat.type != ChatType.PRIVATE:
        return
    blocked = event.new_chat_member.status in ("kicked", "left")
    await audience.set_blocked(event.from_user.id, blocked)
