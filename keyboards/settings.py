"""The /settings keyboard: one row per setting on the main view, a page of choices for each.

Adding a setting: a `SettingRow` in `ROWS` (its label from the stored view) and, for its choices,
a branch in handlers/settings.py. Callback data stays short: `set:<action>:<value>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.styles import ASPECT_RATIOS, MAX_IMAGES, NO_STYLE, STYLE_TITLES
from bot.texts import truncate
from keyboards.prompt_help import prompt_help_button

if TYPE_CHECKING:  # the stored view is only read here: keyboards depend on no service at run time
    from bot.services.preferences import Preferences


class SettingsAction(CallbackData, prefix="set"):
    # Plain strings: a forged value must reach the handler and be refused there.
    action: str  # "home", "open", a setting's key, or "reset"
    value: str = ""


HOME = "home"
OPEN = "open"
RESET = "reset"
ASPECT = "ar"
COUNT = "n"
SEED = "seed"
NEGATIVE = "neg"
STYLE = "style"
TYPE = "type"  # value: ask the user to type it
CLEAR = "clear"  # value: back to none / random


def ratio_value(ratio: str) -> str:
    """ "16:9" as callback data carries it: ":" separates CallbackData fields."""
    return ratio.replace(":", "x")


def style_title(style_id: str) -> str:
    return _(STYLE_TITLES.get(style_id, STYLE_TITLES[NO_STYLE]))


def seed_text(prefs: Preferences) -> str:
    return _("random") if prefs.seed is None else str(prefs.seed)


def negative_text(prefs: Preferences, limit: int = 24) -> str:
    return _("none") if not prefs.negative_prompt else truncate(prefs.negative_prompt, limit)


@dataclass(frozen=True, slots=True)
class SettingRow:
    key: str
    label: Callable[[Preferences], str]


ROWS: tuple[SettingRow, ...] = (
    SettingRow(ASPECT, lambda p: _("📐 Aspect ratio: {value}").format(value=p.aspect_ratio)),
    SettingRow(COUNT, lambda p: _("🖼 Images per prompt: {value}").format(value=p.count)),
    SettingRow(SEED, lambda p: _("🌱 Seed: {value}").format(value=seed_text(p))),
    SettingRow(NEGATIVE, lambda p: _("🚫 Negative prompt: {value}").format(value=negative_text(p))),
    SettingRow(STYLE, lambda p: _("🎨 Style: {value}").format(value=style_title(p.style))),
)


def _button(text: str, action: str, value: str = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=SettingsAction(action=action, value=value).pack())


def _back() -> list[InlineKeyboardButton]:
    return [_button(_("◀️ Back"), HOME)]


def _mark(text: str, chosen: bool) -> str:
    return f"✅ {text}" if chosen else text


def home_keyboard(prefs: Preferences, prompt_help: bool | None = None) -> InlineKeyboardMarkup:
    """`prompt_help`: the user's prompt-help switch, as a row of its own (keyboards/prompt_help.py)."""
    rows = [[_button(row.label(prefs), OPEN, row.key)] for row in ROWS]
    if prompt_help is not None:
        rows.append([prompt_help_button(prompt_help)])
    rows.append([_button(_("↩️ Reset to defaults"), RESET)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def choices_keyboard(key: str, prefs: Preferences) -> InlineKeyboardMarkup:
    """The choices of one setting, the current one ticked."""
    rows: list[list[InlineKeyboardButton]]
    if key == ASPECT:
        buttons = [_button(_mark(r, r == prefs.aspect_ratio), ASPECT, ratio_value(r)) for r in ASPECT_RATIOS]
        rows = [buttons[:4], buttons[4:]]
    elif key == COUNT:
        rows = [[_button(_mark(str(n), n == prefs.count), COUNT, str(n)) for n in range(1, MAX_IMAGES + 1)]]
    elif key == SEED:
        rows = [
            [_button(_mark(_("🎲 Random"), prefs.seed is None), SEED, CLEAR)],
            [_button(_("✍️ Type a number"), SEED, TYPE)],
        ]
    elif key == NEGATIVE:
        rows = [[_button(_("✍️ Type it"), NEGATIVE, TYPE)], [_button(_("🗑 None"), NEGATIVE, CLEAR)]]
    elif key == STYLE:
        buttons = [_button(_mark(style_title(s), s == prefs.style), STYLE, s) for s in STYLE_TITLES]
        rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    else:
        rows = []
    rows.append(_back())
    return InlineKeyboardMarkup(inline_keyboard=rows)
