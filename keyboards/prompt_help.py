"""Prompt help's on/off switch: on /prompthelp's own message, and as a row of /settings. ("Use my own
words" under a rewritten result is a result button: keyboards/results.py.)"""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _


class PromptHelpSwitch(CallbackData, prefix="ph"):
    on: bool  # the value the button sets (not a toggle: a double tap cannot flip it back)
    panel: bool = False  # on /prompthelp's own message (redraw it all); else only the button is redrawn


def prompt_help_button(on: bool, *, panel: bool = False) -> InlineKeyboardButton:
    """The switch as it stands now; pressing it sets the other value. Put it in any keyboard (a
    settings screen): handlers/prompthelp.py stores the press and redraws just this button there."""
    text = _("✨ Prompt help: on") if on else _("✨ Prompt help: off")
    return InlineKeyboardButton(text=text, callback_data=PromptHelpSwitch(on=not on, panel=panel).pack())


def prompt_help_keyboard(on: bool) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[prompt_help_button(on, panel=True)]])


def with_switch(markup: InlineKeyboardMarkup, on: bool) -> InlineKeyboardMarkup:
    """`markup` with its prompt-help button showing `on`, every other button as it was."""
    rows = [
        [
            prompt_help_button(on)
            if button.callback_data is not None and button.callback_data.startswith(PromptHelpSwitch.__prefix__ + ":")
            else button
            for button in row
        ]
        for row in markup.inline_keyboard
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)
