"""/profile: level (and until when), today's usage, when the limit resets, chosen model."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.clock import Clock
from bot.services.quota import QuotaService
from bot.services.users import UserView
from bot.texts import format_reset, level_with_end, limit_text, model_title
from keyboards.menu import PROFILE, MenuButton


def router_factory() -> Router:
    router = Router(name="profile")
    router.message.register(on_profile, Command("profile"))
    router.message.register(on_profile, MenuButton(PROFILE))
    return router


async def on_profile(message: Message, user: UserView, quota: QuotaService, clock: Clock) -> None:
    status = await quota.status(user.id, user.level)
    level = level_with_end(user.level, None if user.is_config_admin else user.level_until, clock.tz)
    lines = [
        _("<b>Your profile</b>"),
        _("Level: {level}").format(level=level),
        _("Used today: {used} of {limit}").format(used=status.used, limit=limit_text(status.limit)),
        _("Limit resets at {reset}").format(reset=format_reset(status.resets_at, clock.local_now())),
        _("Model: {model}").format(model=model_title(user.chosen_model)),
    ]
    await message.answer("\n".join(lines))
