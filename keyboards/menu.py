"""The main reply keyboard. Its buttons are matched in every language: a keyboard sent before the
user switched their Telegram language is still on their screen, and a button is never a prompt."""

from __future__ import annotations

import functools

from aiogram.filters import Filter
from aiogram.types import KeyboardButton, Message, ReplyKeyboardMarkup
from aiogram.utils.i18n import I18n, get_i18n
from aiogram.utils.i18n import gettext as _

GENERATE = "🎨 Generate"
PROFILE = "👤 Profile"
HELP = "❓ Help"
SETTINGS = "⚙️ Settings"


def main_menu() -> ReplyKeyboardMarkup:
    """The same for everyone who speaks a language: built once per locale, not on every /start and /help."""
    return _main_menu(get_i18n().current_locale)


@functools.cache
def _main_menu(locale: str) -> ReplyKeyboardMarkup:
    """`locale` is the current one: the cache key of what `_` translates into."""
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=_("🎨 Generate"))],
            [
                KeyboardButton(text=_("👤 Profile")),
                KeyboardButton(text=_("⚙️ Settings")),
                KeyboardButton(text=_("❓ Help")),
            ],
        ],
        resize_keyboard=True,
        input_field_placeholder=_("Describe an image…"),
    )


def menu_texts(i18n: I18n) -> frozenset[str]:
    """Every button's text in every language: messages that are never prompts."""
    locales = {i18n.default_locale, *i18n.available_locales}
    return frozenset(
        i18n.gettext(msgid, locale=locale) for msgid in (GENERATE, PROFILE, SETTINGS, HELP) for locale in locales
    )


class MenuButton(Filter):
    """Matches a button's text in any language the bot speaks."""

    def __init__(self, msgid: str) -> None:
        self.msgid = msgid

    async def __call__(self, message: Message, i18n_core: I18n) -> bool:
        if not message.text:
            return False
        locales = {i18n_core.default_locale, *i18n_core.available_locales}
        return message.text in {i18n_core.gettext(self.msgid, locale=locale) for locale in locales}
