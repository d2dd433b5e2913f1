"""/start and /help: greet, show the menu, explain models, levels and limits."""

from __future__ import annotations

import functools
import html

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message
from aiogram.utils.i18n import get_i18n
from aiogram.utils.i18n import gettext as _

from bot.catalog import pickable_models
from bot.levels import Level
from bot.services.quota import QuotaService
from bot.services.users import UserView
from bot.texts import level_name, limit_text
from keyboards.menu import HELP, MenuButton, main_menu


def router_factory() -> Router:
    router = Router(name="start")
    router.message.register(on_start, CommandStart())
    router.message.register(on_help, Command("help"))
    router.message.register(on_help, MenuButton(HELP))
    return router


async def on_start(message: Message, user: UserView) -> None:
    name = html.escape(user.first_name or user.display_name)
    await message.answer(
        _(
            "Hi, {name}! 👋\n\n"
            "I turn descriptions into images. Send me a text describing a picture, "
            "or press <b>Generate</b> to choose a model first.\n\n"
            "/help explains models, levels and limits."
        ).format(name=name),
        reply_markup=main_menu(),
    )


async def on_help(message: Message, quota: QuotaService) -> None:
    limits = tuple(quota.limit_for(level) for level in Level)
    await message.answer(_help_text(get_i18n().current_locale, limits), reply_markup=main_menu())


@functools.lru_cache(maxsize=64)
def _help_text(locale: str, limits: tuple[int, ...]) -> str:
    """The same for everyone who speaks a language (limits are settings): written once per locale.
    `locale` is the current one, the cache key of what `_` translates into."""
    lines = [_("<b>How it works</b>"), _("Send a text description and I reply with an image."), ""]
    lines.append(_("<b>Models</b>"))
    for spec in pickable_models():
        lines.append(
            _("{emoji} {title}: from the {level} level").format(
                emoji=spec.emoji, title=spec.title, level=level_name(spec.min_level)
            )
        )
    lines += ["", _("<b>Levels and daily limits</b>")]
    for level, limit in zip(Level, limits, strict=True):
        lines.append(f"• {level_name(level)}: {limit_text(limit)}")
    lines += [
        "",
        _(
            "If the chosen model is unavailable I try the others (Gemini → FLUX → Pollinations) "
            "and say which one made the picture. A failed attempt does not count against your limit."
        ),
        "",
        _("Commands: /generate choose a model, /profile your level and usage, /cancel stop the current step."),
        _(
            "/settings: aspect ratio, images per prompt, seed, negative prompt, style. For one prompt only, "
            "add flags: --ar 16:9 --n 2 --seed 42 --no text --style anime"
        ),
        _("/history your recent images; /history clear forgets them."),
    ]
    return "\n".join(lines)
