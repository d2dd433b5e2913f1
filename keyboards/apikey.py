"""/apikey's buttons: make a key, revoke one. Callback data names the key row, never the key."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.services.api_keys import ApiKeyView


class KeyAction(StrEnum):
    NEW = "new"
    REVOKE = "rev"


class ApiKeyButton(CallbackData, prefix="ak"):
    action: KeyAction
    key_id: int = 0


def keys_keyboard(keys: list[ApiKeyView], new_label: str | None, revoke_label: str) -> InlineKeyboardMarkup:
    """One revoke button per key (`revoke_label` formatted with the key's prefix), then "new" if allowed."""
    rows = [
        [
            InlineKeyboardButton(
                text=revoke_label.format(prefix=key.prefix),
                callback_data=ApiKeyButton(action=KeyAction.REVOKE, key_id=key.id).pack(),
            )
        ]
        for key in keys
    ]
    if new_label is not None:
        rows.append([InlineKeyboardButton(text=new_label, callback_data=ApiKeyButton(action=KeyAction.NEW).pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows)
