"""/cancel: leave whatever step the user is in."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from keyboards.menu import main_menu


def router_factory() -> Router:
    router = Router(name="common")
    router.message.register(on_cancel, Command("cancel"))
    return router


async def on_cancel(message: Message, state: FSMContext) -> None:
    if await state.get_state() is None:
        await message.answer(_("Nothing to cancel."), reply_markup=main_menu())
        return
    await state.clear()
    await message.answer(_("Cancelled."), reply_markup=main_menu())
