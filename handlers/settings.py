"""/settings: aspect ratio, images per prompt, seed, negative prompt and style, stored per user.

One message that edits itself in place: the main view lists the settings, a tap opens that
setting's choices, a choice saves and returns to the main view. A seed or a negative prompt is
typed: the next text message is taken as it (commands, such as /cancel, are not).
"""

from __future__ import annotations

import html
import logging

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.services.preferences import Preferences, PreferenceService
from bot.services.prompts import PromptRecords
from bot.services.users import UserView
from bot.styles import ASPECT_RATIOS, MAX_IMAGES, NEGATIVE_MAX_CHARS, SEED_MAX, STYLE_TITLES
from keyboards.menu import GENERATE, SETTINGS, MenuButton
from keyboards.settings import (
    ASPECT,
    CLEAR,
    COUNT,
    HOME,
    NEGATIVE,
    OPEN,
    RESET,
    ROWS,
    SEED,
    STYLE,
    TYPE,
    SettingsAction,
    choices_keyboard,
    home_keyboard,
    negative_text,
    seed_text,
    style_title,
)

log = logging.getLogger(__name__)


class SettingsFlow(StatesGroup):
    waiting_seed = State()
    waiting_negative = State()


def router_factory() -> Router:
    router = Router(name="settings")
    # Private chats only: prompts are answered only there, and in a group anyone could press the buttons.
    private = F.chat.type == ChatType.PRIVATE
    router.message.register(on_settings, private, Command("settings"))
    router.message.register(on_settings, private, MenuButton(SETTINGS))
    router.callback_query.register(on_action, SettingsAction.filter())
    typed = (private, F.text, ~F.text.startswith("/"), ~MenuButton(GENERATE), ~MenuButton(SETTINGS))
    router.message.register(on_seed_typed, SettingsFlow.waiting_seed, *typed)
    router.message.register(on_negative_typed, SettingsFlow.waiting_negative, *typed)
    return router


def home_text(prefs: Preferences) -> str:
    negative = html.escape(negative_text(prefs, 200), quote=False)
    return "\n".join(
        [
            _("⚙️ <b>Options</b> for your next prompts"),
            "",
            _("Aspect ratio: {value}").format(value=prefs.aspect_ratio),
            _("Images per prompt: {value}").format(value=prefs.count),
            _("Seed: {value}").format(value=seed_text(prefs)),
            _("Negative prompt: {value}").format(value=negative),
            _("Style: {value}").format(value=style_title(prefs.style)),
            "",
            _("For one prompt only, add flags: <code>--ar 16:9 --n 2 --seed 42 --no text --style anime</code>"),
        ]
    )


async def on_settings(
    message: Message, user: UserView, preferences: PreferenceService, prompts: PromptRecords, state: FSMContext
) -> None:
    if await state.get_state() in (SettingsFlow.waiting_seed.state, SettingsFlow.waiting_negative.state):
        await state.clear()
    prefs = await preferences.get(user.id)
    await message.answer(home_text(prefs), reply_markup=home_keyboard(prefs, await prompts.enabled(user.id)))


async def on_action(
    callback: CallbackQuery,
    callback_data: SettingsAction,
    user: UserView,
    preferences: PreferenceService,
    prompts: PromptRecords,
    state: FSMContext,
) -> None:
    if isinstance(callback.message, Message) and callback.message.chat.type != ChatType.PRIVATE:
        await callback.answer(_("Open /settings in a private chat with me."), show_alert=True)
        return
    action, value = callback_data.action, callback_data.value
    changes = _changes(action, value)
    typing = action in (SEED, NEGATIVE) and value == TYPE
    opening = action == OPEN and value in {row.key for row in ROWS}
    if changes is None and not (typing or opening or action in (HOME, RESET)):
        await callback.answer(_("This option does not exist."), show_alert=True)
        return
    await callback.answer()  # first: a query left waiting on the database expires
    if typing:
        await _ask_to_type(callback, action, state)
        return
    if await state.get_state() in (SettingsFlow.waiting_seed.state, SettingsFlow.waiting_negative.state):
        await state.clear()  # a button pressed instead of typing: the typing is off
    if action == RESET:
        prefs = await preferences.reset(user.id)
    elif changes is not None:
        prefs = await preferences.update(user.id, **changes)
    else:
        prefs = await preferences.get(user.id)
    if opening:
        await _show(callback, _choices_text(value), choices_keyboard(value, prefs))
    else:
        await _show(callback, home_text(prefs), home_keyboard(prefs, await prompts.enabled(user.id)))


def _changes(action: str, value: str) -> dict[str, object] | None:
    """The setting a choice sets, or None when the callback sets nothing (or is forged)."""
    if action == ASPECT and value.replace("x", ":") in ASPECT_RATIOS:
        return {"aspect_ratio": value.replace("x", ":")}
    if action == COUNT and value.isdecimal() and 1 <= int(value) <= MAX_IMAGES:
        return {"count": int(value)}
    if action == SEED and value == CLEAR:
        return {"seed": None}
    if action == NEGATIVE and value == CLEAR:
        return {"negative_prompt": None}
    if action == STYLE and value in STYLE_TITLES:
        return {"style": value}
    return None


def _choices_text(key: str) -> str:
    texts = {
        ASPECT: _("📐 Choose the aspect ratio of your images."),
        COUNT: _("🖼 How many images per prompt? Each image counts against your daily limit."),
        SEED: _("🌱 The same seed with the same prompt and model gives the same picture. Random varies it."),
        NEGATIVE: _("🚫 Words to keep out of the picture (models that cannot use them say so)."),
        STYLE: _("🎨 A style is added to every prompt."),
    }
    return texts.get(key, "")


async def _ask_to_type(callback: CallbackQuery, action: str, state: FSMContext) -> None:
    if action == SEED:
        await state.set_state(SettingsFlow.waiting_seed)
        text = _("Send the seed: a whole number from 0 to {max}. /cancel to keep the current one.").format(max=SEED_MAX)
    else:
        await state.set_state(SettingsFlow.waiting_negative)
        text = _("Send the words to keep out of your images (at most {max} characters). /cancel to keep them.").format(
            max=NEGATIVE_MAX_CHARS
        )
    await _show(callback, text, None)


async def on_seed_typed(
    message: Message, user: UserView, preferences: PreferenceService, prompts: PromptRecords, state: FSMContext
) -> None:
    text = (message.text or "").strip()
    if not text.isdecimal() or int(text) > SEED_MAX:
        await message.answer(_("A seed is a whole number from 0 to {max}. Try again, or /cancel.").format(max=SEED_MAX))
        return
    await state.clear()
    prefs = await preferences.update(user.id, seed=int(text))
    await message.answer(home_text(prefs), reply_markup=home_keyboard(prefs, await prompts.enabled(user.id)))


async def on_negative_typed(
    message: Message, user: UserView, preferences: PreferenceService, prompts: PromptRecords, state: FSMContext
) -> None:
    text = " ".join((message.text or "").split())
    if len(text) > NEGATIVE_MAX_CHARS:
        await message.answer(
            _("That is {count} characters; at most {max} fit. Try a shorter one, or /cancel.").format(
                count=len(text), max=NEGATIVE_MAX_CHARS
            )
        )
        return
    await state.clear()
    prefs = await preferences.update(user.id, negative_prompt=text)
    await message.answer(home_text(prefs), reply_markup=home_keyboard(prefs, await prompts.enabled(user.id)))


async def _show(callback: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """Edit the settings message in place; a message too old to edit gets a fresh one."""
    message = callback.message
    if isinstance(message, Message):
        try:
            await message.edit_text(text, reply_markup=markup)
            return
        except TelegramBadRequest as exc:
            if "not modified" in exc.message:  # a double tap: nothing changed, nothing to say
                return
            log.debug("settings message not edited: %s", exc.message[:100])
    bot: Bot | None = callback.bot
    if bot is None or callback.from_user is None:
        return
    try:
        await bot.send_message(callback.from_user.id, text, reply_markup=markup)
    except TelegramAPIError as exc:
        log.info("settings not shown: %s", type(exc).__name__)
