"""/cancel: leave whatever step the user is in, and withdraw images still waiting for a worker."""

from __future__ import annotations

import contextlib

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.services.jobs import GenerationJobs
from bot.services.users import UserView
from keyboards.menu import main_menu


def router_factory() -> Router:
    router = Router(name="common")
    router.message.register(on_cancel, Command("cancel"))
    return router


async def on_cancel(message: Message, state: FSMContext, user: UserView, jobs: GenerationJobs, bot: Bot) -> None:
    withdrawn = await jobs.cancel_pending(user.id)
    for job in withdrawn:
        if job.chat_id is not None and job.status_message_id is not None:
            with contextlib.suppress(TelegramAPIError):  # too old to delete: the cancellation stands
                await bot.delete_message(job.chat_id, job.status_message_id)
    had_state = await state.get_state() is not None
    await state.clear()
    if withdrawn:
        units = sum(job.released for job in withdrawn)
        text = _("Cancelled waiting images: {count}. Returned to today's limit: {units}.").format(
            count=len(withdrawn), units=units
        )
    elif had_state:
        text = _("Cancelled.")
    else:
        text = _("Nothing to cancel.")
    await message.answer(text, reply_markup=main_menu())
