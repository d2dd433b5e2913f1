"""Inline mode's markup: the button under an inline image (required: an inline message can be edited
later only if it carries a keyboard), the "start the bot" button above the results, and result ids."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, InlineQueryResultsButton
from aiogram.utils.i18n import gettext as _

from bot.catalog import ModelId

START_PARAMETER = "inline"  # /start inline: the deep link of the "start the bot" button
GENERATE_PREFIX = "gen:"  # result id of the "Generate" result: gen:<model>
HINT_ID, LOCKED_ID, LIMIT_ID = "hint", "locked", "limit"  # results that start no job


def again_keyboard() -> InlineKeyboardMarkup:
    """Opens inline mode in the same chat: another picture without leaving the conversation."""
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=_("🎨 Make another"), switch_inline_query_current_chat="")]]
    )


def start_button() -> InlineQueryResultsButton:
    return InlineQueryResultsButton(text=_("Start the bot to get images here"), start_parameter=START_PARAMETER)


def generate_result_id(model: ModelId) -> str:
    return f"{GENERATE_PREFIX}{model.value}"


def model_of_result(result_id: str) -> ModelId | None:
    """The model a chosen "Generate" result was offered with; None for any other (or a forged) id."""
    if not result_id.startswith(GENERATE_PREFIX):
        return None
    try:
        return ModelId(result_id.removeprefix(GENERATE_PREFIX))
    except ValueError:
        return None
