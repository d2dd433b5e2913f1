"""Last router: unknown commands, non-text input and outdated buttons get a short hint."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _


def router_factory() -> Router:
    router = Router(name="fallback")
    # In groups a "/command" may be meant for another bot: stay quiet there.
    router.message.register(on_unknown_command, F.chat.type == ChatType.PRIVATE, F.text.startswith("/"))
    router.message.register(on_not_text, F.chat.type == ChatType.PRIVATE)
    router.callback_query.register(on_stale_callback)
    return router


async def on_unknown_command(message: Message) -> None:
    await message.answer(_("I don't know that command. /help lists what I can do."))


async def on_not_text(message: Message) -> None:
    await message.answer(_("I draw from text descriptions only. Send me a few words describing the picture."))


async def on_stale_callback(callback: CallbackQuery) -> None:
    await callback.answer(_("This button is outdated. Send /generate for a fresh menu."))
