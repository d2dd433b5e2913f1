"""The inline model picker. Locked models stay visible with 🔒 so users see what a level unlocks."""

from __future__ import annotations

from collections.abc import Callable

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.catalog import ModelId, ModelSpec, pickable_models
from bot.levels import Level


class ModelPick(CallbackData, prefix="pick"):
    # A plain string, not the enum: a forged value must reach the handler and be refused there.
    model: str


def model_picker(level: Level, chosen: ModelId) -> InlineKeyboardMarkup:
    return models_keyboard(level, chosen, "✅", lambda spec: ModelPick(model=spec.id.value).pack())


def models_keyboard(
    level: Level, current: ModelId, mark: str, callback_data: Callable[[ModelSpec], str]
) -> InlineKeyboardMarkup:
    """A button a pickable model, `current` with `mark`; every picker (this one, 🔀 Other model) looks alike."""
    rows: list[list[InlineKeyboardButton]] = []
    for spec in pickable_models():
        if not level.allows(spec.min_level):
            label = f"🔒 {spec.title}"
        elif spec.id == current:
            label = f"{mark} {spec.emoji} {spec.title}"
        else:
            label = f"{spec.emoji} {spec.title}"
        rows.append([InlineKeyboardButton(text=label, callback_data=callback_data(spec))])
    return InlineKeyboardMarkup(inline_keyboard=rows)
