"""/prompthelp: the user's prompt-help switch, and "use my own words" under a rewritten result.

The switch's text and keyboard are functions (`prompt_help_text`, keyboards.prompt_help) so a
settings screen can show the same row and route its presses here (`PromptHelpSwitch`).
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.clock import Clock
from bot.config import Settings
from bot.queue import JobQueue
from bot.services.jobs import GenerationJobs
from bot.services.prompts import PromptRecords
from bot.services.users import UserService, UserView
from handlers.generate import queue_prompt
from handlers.shared import fresh_user
from keyboards.prompt_help import PromptHelpSwitch, prompt_help_keyboard, with_switch
from keyboards.results import ResultAction, ResultButton
from models import JobKind

log = logging.getLogger(__name__)


def router_factory() -> Router:
    router = Router(name="prompthelp")
    router.message.register(on_prompt_help, Command("prompthelp"))
    router.callback_query.register(on_switch, PromptHelpSwitch.filter())
    router.callback_query.register(on_original_prompt, ResultButton.filter(F.action == ResultAction.ORIGINAL_PROMPT))
    return router


def prompt_help_text(on: bool, available: bool = True) -> str:
    """What the switch does and where it stands (in the current locale)."""
    text = _(
        "✨ Prompt help: descriptions not in English are translated, and short ones get more detail, "
        "before the image is made. The caption shows what was used, with a button for your own words."
    )
    state = _("Now: on.") if on else _("Now: off.")
    text = f"{text}\n\n{state}"
    if not available:
        text += "\n" + _("It is not available on this bot at the moment: your own words are used.")
    return text


async def on_prompt_help(message: Message, user: UserView, prompts: PromptRecords, settings: Settings) -> None:
    on = await prompts.enabled(user.id)
    await message.answer(prompt_help_text(on, settings.hf_token is not None), reply_markup=prompt_help_keyboard(on))


async def on_switch(
    callback: CallbackQuery, callback_data: PromptHelpSwitch, user: UserView, prompts: PromptRecords, settings: Settings
) -> None:
    on = callback_data.on
    # Answer first: a callback left waiting while the database is busy expires.
    await callback.answer(_("Prompt help is on.") if on else _("Prompt help is off."))
    await prompts.set_enabled(user.id, on)
    message = callback.message
    if not isinstance(message, Message):
        return
    try:
        if callback_data.panel:
            await message.edit_text(
                prompt_help_text(on, settings.hf_token is not None), reply_markup=prompt_help_keyboard(on)
            )
        elif message.reply_markup is not None:  # a row on another screen: only this button changes
            await message.edit_reply_markup(reply_markup=with_switch(message.reply_markup, on))
    except TelegramBadRequest as exc:
        if "not modified" not in exc.message:
            log.debug("prompt help switch not redrawn: %s", exc.message[:100])


async def on_original_prompt(
    callback: CallbackQuery,
    bot: Bot,
    callback_data: ResultButton,
    user: UserView,
    users: UserService,
    jobs: GenerationJobs,
    queue: JobQueue,
    prompts: PromptRecords,
    clock: Clock,
) -> None:
    """A new job from the user's own words, with prompt help off for it; the same model as before."""
    job = await prompts.job_text(callback_data.generation_id, user.id)
    if job is None or job.kind is not JobKind.GENERATE or not isinstance(callback.message, Message):
        await callback.answer(_("This button is outdated. Send /generate for a fresh menu."))
        return
    await callback.answer(_("Drawing from your own words…"))
    fresh = await fresh_user(users, user)  # what is charged is read from the database, never the cache
    if fresh is None:
        return
    await queue_prompt(
        bot,
        callback.message.chat.id,
        user=fresh,
        prompt=job.prompt,
        model=job.model,
        jobs=jobs,
        queue=queue,
        clock=clock,
        options=job.options,
        parent_id=job.generation_id,
        prompt_used=job.prompt,  # fixed on the row: prompt help is off for this job
    )
