"""The inline model picker. Locked models stay visible with 🔒 so users see what a level unlocks."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.catalog import ModelId, pickable_models
from bot.levels import Level


class ModelPick(CallbackData, prefix="pick"):
    # A plain string, not the enum: a forged value must reach the handler and be refused there.
    model: str


def model_picker(level: Level, chosen: ModelId) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    for spec in pickable_models():
        if not level.allows(spec.min_level):
            label = f"🔒 {spec.title}"
        elif spec.id == chosen:
            label = f"✅ {spec.emoji} {spec.title}"
        else:
            label = f"{spec.emoji} {spec.title}"
        rows.append([InlineKeyboardButton(text=label, callback_data=ModelPick(model=spec.id.value).pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows)
