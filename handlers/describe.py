"""/describe: a photo described in words by a vision model, and "Generate from this".

/describe puts the chat in describe mode (an FSM state): every photo sent then is described, until
/cancel or a text prompt. A photo captioned /describe works at any time. The work is a job of kind
DESCRIBE like any prompt (level, limit, queue, refunds): the worker fetches and describes the photo.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.clock import Clock
from bot.config import Settings
from bot.photos import PHOTO_MAX_BYTES, pick_vision_photo
from bot.queue import JobQueue
from bot.services.generation import MAX_PROMPT_CHARS
from bot.services.jobs import GenerationJobs
from bot.services.prompts import PromptRecords
from bot.services.users import UserService, UserView
from bot.texts import truncate
from handlers.generate import queue_prompt
from handlers.shared import fresh_user
from keyboards.describe import DescribeButton
from models import JobKind

DESCRIBE_PROMPT = "(describe a photo)"  # stored as the job's prompt; the photo is input_file_id


class DescribeFlow(StatesGroup):
    waiting_photo = State()


def router_factory() -> Router:
    router = Router(name="describe")
    private = F.chat.type == ChatType.PRIVATE
    router.message.register(on_photo, private, F.photo, F.caption.startswith("/describe"))
    router.message.register(on_describe, Command("describe"))
    router.message.register(on_photo, private, F.photo, DescribeFlow.waiting_photo)
    router.callback_query.register(on_generate_from, DescribeButton.filter())
    return router


def _unavailable() -> str:
    return _("Describing photos is not available on this bot at the moment.")


async def on_describe(message: Message, state: FSMContext, settings: Settings) -> None:
    if settings.hf_token is None:
        await message.answer(_unavailable())
        return
    await state.set_state(DescribeFlow.waiting_photo)
    await message.answer(_("📷 Send me a photo and I will describe it in words. /cancel to stop."))


async def on_photo(
    message: Message,
    bot: Bot,
    user: UserView,
    users: UserService,
    jobs: GenerationJobs,
    queue: JobQueue,
    clock: Clock,
    settings: Settings,
) -> None:
    """Check the photo's reported size, reserve (unless DESCRIBE_FREE) and queue; the worker does the rest."""
    if settings.hf_token is None:
        await message.answer(_unavailable())
        return
    size = pick_vision_photo(message.photo, min(settings.provider_max_bytes, PHOTO_MAX_BYTES))
    if size is None:
        await message.answer(_("This photo is too large for me to look at. Nothing was charged."))
        return
    fresh = await fresh_user(users, user)  # what is charged is read from the database, never the cache
    if fresh is None:
        return
    await queue_prompt(
        bot,
        message.chat.id,
        user=fresh,
        prompt=DESCRIBE_PROMPT,
        model=fresh.chosen_model,
        jobs=jobs,
        queue=queue,
        clock=clock,
        kind=JobKind.DESCRIBE,
        input_file_id=size.file_id,
        charge=not settings.describe_free,
        running_text=_("🔎 Looking at your photo…"),
        waiting_text=_("⏳ Queued: I will look at your photo when your current request is done."),
    )


async def on_generate_from(
    callback: CallbackQuery,
    bot: Bot,
    callback_data: DescribeButton,
    user: UserView,
    users: UserService,
    jobs: GenerationJobs,
    queue: JobQueue,
    prompts: PromptRecords,
    clock: Clock,
) -> None:
    """A prompt job whose prompt is the description, for the user's chosen model."""
    job = await prompts.job_text(callback_data.generation_id, user.id)
    usable = job is not None and job.kind is JobKind.DESCRIBE and bool(job.prompt_used)
    if job is None or not usable or job.prompt_used is None or not isinstance(callback.message, Message):
        await callback.answer(_("This button is outdated. Send /generate for a fresh menu."))
        return
    await callback.answer()
    fresh = await fresh_user(users, user)
    if fresh is None:
        return
    await queue_prompt(
        bot,
        callback.message.chat.id,
        user=fresh,
        prompt=truncate(job.prompt_used, MAX_PROMPT_CHARS),
        model=fresh.chosen_model,
        jobs=jobs,
        queue=queue,
        clock=clock,
        parent_id=job.generation_id,
    )
