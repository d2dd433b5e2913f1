"""The ban button under an admin alert (a user whose prompts keep being refused)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup


class BanUser(CallbackData, prefix="ban"):
    user_id: int


def ban_button(user_id: int, label: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=label, callback_data=BanUser(user_id=user_id).pack())]]
    )
