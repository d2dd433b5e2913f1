"""The button under a photo's description: draw a picture from it."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _


class DescribeButton(CallbackData, prefix="dsc"):
    generation_id: int  # the describe job; its row holds the description


def generate_from_keyboard(generation_id: int) -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(
        text=_("🎨 Generate from this"), callback_data=DescribeButton(generation_id=generation_id).pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button]])
