"""The main reply keyboard. Button texts go through the catalogue, and handlers match them lazily."""

from __future__ import annotations

from aiogram.types import KeyboardButton, ReplyKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __

GENERATE = __("🎨 Generate")
PROFILE = __("👤 Profile")
HELP = __("❓ Help")


def main_menu() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=_("🎨 Generate"))],
            [KeyboardButton(text=_("👤 Profile")), KeyboardButton(text=_("❓ Help"))],
        ],
        resize_keyboard=True,
        input_field_placeholder=_("Describe an image…"),
    )
