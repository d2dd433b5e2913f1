"""Editing and upscaling a photo: a photo with a caption, a text reply to one of the bot's images, and
the ✏️ Edit and ⬆️ Upscale buttons under a result. Each becomes a job like a prompt (same levels,
limits, queue and refunds); the worker fetches the photo and runs bot/services/editing.py.

The photo is bounded here, from what Telegram says about it: of the sizes Telegram offers, the largest
within the byte and pixel caps is taken (bot/photos.py); when none fits, nothing is charged.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.catalog import ModelId
from bot.clock import Clock
from bot.i18n import N_
from bot.photos import pick_photo
from bot.queue import JobQueue
from bot.services.generation import GenerationService
from bot.services.jobs import GenerationJobs, JobView
from bot.services.users import UserService, UserView
from handlers.generate import queue_prompt
from handlers.shared import fresh_user
from keyboards.menu import GENERATE, HELP, PROFILE, MenuButton
from keyboards.results import ResultAction, ResultButton
from models import JobKind

log = logging.getLogger(__name__)

# The model an edit or upscale is booked under: every level holds it, so editing follows the user's
# own limit. Which editor really made the image is stored with the result.
PHOTO_JOB_MODEL = ModelId.GEMINI_FLASH
EDIT_UNAVAILABLE = N_("Editing is not available right now. Nothing was charged.")


class EditFlow(StatesGroup):
    """✏️ Edit was pressed: the next text is the instruction for that image."""

    waiting_instruction = State()


def router_factory() -> Router:
    router = Router(name="edit")
    private = F.chat.type == ChatType.PRIVATE
    instruction = (F.text, ~F.text.startswith("/"), ~MenuButton(GENERATE), ~MenuButton(PROFILE), ~MenuButton(HELP))
    router.message.register(on_captioned_photo, private, F.photo, F.caption)
    router.message.register(on_instruction, EditFlow.waiting_instruction, private, *instruction)
    router.message.register(on_reply_to_image, private, F.reply_to_message.photo, replied_to_bot, *instruction)
    photo_actions = {ResultAction.EDIT, ResultAction.UPSCALE}
    router.callback_query.register(on_photo_button, ResultButton.filter(F.action.in_(photo_actions)))
    return router


async def replied_to_bot(message: Message, bot: Bot) -> bool:
    """A reply to one of this bot's own messages (not to a photo the user sent or forwarded)."""
    replied = message.reply_to_message
    return replied is not None and replied.from_user is not None and replied.from_user.id == bot.id


async def on_captioned_photo(
    message: Message,
    user: UserView,
    users: UserService,
    jobs: GenerationJobs,
    queue: JobQueue,
    clock: Clock,
    generation: GenerationService,
    state: FSMContext,
    raw_state: str | None = None,
) -> None:
    """A photo with a caption: the caption says what to change."""
    if raw_state is not None:  # a new photo replaces whatever step the user was in (an ✏️ Edit waiting)
        await state.clear()
    if not await _editing_offered(message, generation):
        return
    file_id = await _photo_to_edit(message, message)
    if file_id is not None:
        await _submit(
            message, user, users, jobs, queue, clock, JobKind.EDIT, (message.caption or "").strip(), file_id, None
        )


async def on_reply_to_image(
    message: Message,
    user: UserView,
    users: UserService,
    jobs: GenerationJobs,
    queue: JobQueue,
    clock: Clock,
    generation: GenerationService,
) -> None:
    """A text reply to one of the bot's images: the text says what to change in it."""
    replied = message.reply_to_message
    assert replied is not None
    if not await _editing_offered(message, generation):
        return
    parent = await jobs.find_sent(message.chat.id, replied.message_id)  # a result of ours: the edit continues it
    parent_id = parent.id if parent is not None and parent.user_id == user.id else None
    file_id = await _photo_to_edit(message, replied)
    if file_id is not None:
        await _submit(
            message, user, users, jobs, queue, clock, JobKind.EDIT, (message.text or "").strip(), file_id, parent_id
        )


async def _editing_offered(message: Message, generation: GenerationService) -> bool:
    """Whether an editor is configured; when none is, the user hears so (nothing was charged)."""
    if generation.can_edit():
        return True
    await message.answer(_(EDIT_UNAVAILABLE))
    return False


async def _photo_to_edit(message: Message, source: Message) -> str | None:
    """The file id of the largest size of `source`'s photo an editor takes; None (and the user told)
    when every size is too large."""
    photo = pick_photo(source.photo, JobKind.EDIT)
    if photo is None:
        await message.answer(_("This photo is too large for me to work on. Please send a smaller one."))
        return None
    return photo.file_id


async def on_photo_button(
    callback: CallbackQuery,
    callback_data: ResultButton,
    user: UserView,
    users: UserService,
    jobs: GenerationJobs,
    queue: JobQueue,
    clock: Clock,
    generation: GenerationService,
    state: FSMContext,
) -> None:
    """✏️ Edit asks for the instruction (the image and its generation wait in the FSM state);
    ⬆️ Upscale submits at once."""
    upscale = callback_data.action is ResultAction.UPSCALE
    if not (generation.can_upscale() if upscale else generation.can_edit()):
        await callback.answer(
            _("Upscaling is not available right now.") if upscale else _(EDIT_UNAVAILABLE), show_alert=True
        )
        return
    found = await _own_result(callback, callback_data, user, jobs, JobKind.UPSCALE if upscale else JobKind.EDIT)
    if found is None:
        return
    message, file_id, parent = found
    if upscale:
        await callback.answer(_("⬆️ Upscaling ×2…"))
        # The parent's prompt goes with it: /history and /user show what the upscaled image is of.
        await _submit(message, user, users, jobs, queue, clock, JobKind.UPSCALE, parent.prompt, file_id, parent.id)
        return
    await callback.answer()
    await state.set_state(EditFlow.waiting_instruction)
    await state.update_data(edit_file_id=file_id, edit_parent_id=callback_data.generation_id)
    await message.answer(_("✏️ What should I change in this picture? Send a short instruction, or /cancel."))


async def on_instruction(
    message: Message,
    user: UserView,
    users: UserService,
    jobs: GenerationJobs,
    queue: JobQueue,
    clock: Clock,
    state: FSMContext,
) -> None:
    data = await state.get_data()
    await state.clear()
    file_id = data.get("edit_file_id")
    parent_id = data.get("edit_parent_id")
    if not isinstance(file_id, str):  # a state left from an older version: start over
        await message.answer(_("This button is outdated. Send /generate for a fresh menu."))
        return
    parent = parent_id if isinstance(parent_id, int) else None
    await _submit(message, user, users, jobs, queue, clock, JobKind.EDIT, (message.text or "").strip(), file_id, parent)


async def _own_result(
    callback: CallbackQuery, callback_data: ResultButton, user: UserView, jobs: GenerationJobs, kind: JobKind
) -> tuple[Message, str, JobView] | None:
    """The message, its photo's file_id and the generation under this button, if the image is the
    presser's own; else say why not."""
    message = callback.message
    job: JobView | None = await jobs.find(callback_data.generation_id)
    if job is None or not isinstance(message, Message):
        await callback.answer(_("This button is outdated. Send /generate for a fresh menu."), show_alert=True)
        return None
    if job.user_id != user.id:  # a forwarded result, or someone else's in a group
        await callback.answer(_("This image belongs to someone else: its buttons are theirs."), show_alert=True)
        return None
    photo = pick_photo(message.photo, kind)
    if photo is None:
        await callback.answer(_("This image is too large for that."), show_alert=True)
        return None
    return message, photo.file_id, job


async def _submit(
    message: Message,
    user: UserView,
    users: UserService,
    jobs: GenerationJobs,
    queue: JobQueue,
    clock: Clock,
    kind: JobKind,
    prompt: str,
    file_id: str,
    parent_id: int | None,
) -> None:
    """Validate, reserve and queue, as a prompt does; the worker fetches the photo."""
    fresh = await fresh_user(users, user)
    if fresh is None:
        return
    bot = message.bot
    assert bot is not None, "a message from an update is bound to its bot"
    await queue_prompt(
        bot,
        message.chat.id,
        user=fresh,
        prompt=prompt,
        model=PHOTO_JOB_MODEL,
        jobs=jobs,
        queue=queue,
        clock=clock,
        kind=kind,
        parent_id=parent_id,
        input_file_id=file_id,
        running_text=_("⬆️ Upscaling ×2…") if kind is JobKind.UPSCALE else _("✏️ Editing your picture…"),
        waiting_text=_("⏳ Queued: it starts when your current image is done."),
    )
