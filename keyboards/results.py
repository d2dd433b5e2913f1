"""The buttons under a delivered result. Callback data names the generation, never the prompt: it
fits Telegram's 64 bytes and works after a restart and on any instance, since the row holds the rest."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.catalog import ModelId
from bot.levels import Level
from keyboards.picker import models_keyboard


class ResultAction(StrEnum):
    REGENERATE = "re"  # same prompt and options, new seed
    OTHER_MODEL = "om"  # the picker, then the same prompt
    ORIGINAL = "or"  # the untouched file as a document
    UPSCALE = "up"  # ×2 through an upscaler
    EDIT = "ed"  # asks for an instruction
    ORIGINAL_PROMPT = "op"  # prompt help rewrote the prompt: run the user's own words instead


class ResultButton(CallbackData, prefix="res"):
    action: ResultAction
    generation_id: int


class ResultModel(CallbackData, prefix="rmod"):
    """🔀 Other model, second step: the same prompt with this model. A plain string: a forged value
    reaches the handler and is refused there."""

    generation_id: int
    model: str


def result_keyboard(
    generation_id: int, *, upscale: bool = False, original_prompt: bool = False
) -> InlineKeyboardMarkup:
    """🔁 🔀 📎 on the first row, ⬆️ ✏️ on the second (⬆️ only when an upscaler is configured); ↩️ on a
    third when prompt help rewrote the prompt (`original_prompt`: the user's own words instead)."""

    def button(label: str, action: ResultAction) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            text=label, callback_data=ResultButton(action=action, generation_id=generation_id).pack()
        )

    second = [button(_("✏️ Edit"), ResultAction.EDIT)]
    if upscale:
        second.insert(0, button(_("⬆️ Upscale ×2"), ResultAction.UPSCALE))
    rows = [
        [
            button(_("🔁 Regenerate"), ResultAction.REGENERATE),
            button(_("🔀 Other model"), ResultAction.OTHER_MODEL),
            button(_("📎 Original"), ResultAction.ORIGINAL),
        ],
        second,
    ]
    if original_prompt:
        rows.append([button(_("↩️ Use my own words"), ResultAction.ORIGINAL_PROMPT)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def other_model_picker(generation_id: int, level: Level, current: ModelId) -> InlineKeyboardMarkup:
    """The model picker for one result's prompt: locked models stay visible with 🔒."""
    return models_keyboard(
        level, current, "🔁", lambda spec: ResultModel(generation_id=generation_id, model=spec.id.value).pack()
    )
