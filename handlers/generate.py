"""The model picker and the prompt → image flow."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.catalog import ModelId
from bot.clock import Clock
from bot.faults import is_outage
from bot.flag_texts import flag_hint
from bot.prompt_flags import FlagError, parse_prompt
from bot.providers.base import ImageOptions
from bot.queue import JobQueue
from bot.services.jobs import GenerationJobs, SubmitStatus, Submitted
from bot.services.users import UserService, UserView
from bot.texts import format_reset, level_name, model_title
from handlers.shared import fresh_prompter, pickable_model
from keyboards.menu import GENERATE, MenuButton
from keyboards.picker import ModelPick, model_picker
from models import JobKind

log = logging.getLogger(__name__)


class GenerateFlow(StatesGroup):
    """Set by a model pick so /cancel has something to cancel ("Cancelled." rather than "Nothing to
    cancel."). The prompt handler deliberately does not filter on it: any private text is a prompt for
    the chosen model, with or without a pick first; it only clears the state when one is set."""

    waiting_prompt = State()


def router_factory() -> Router:
    router = Router(name="generate")
    router.message.register(on_generate, Command("generate"))
    router.message.register(on_generate, MenuButton(GENERATE))
    router.callback_query.register(on_pick, ModelPick.filter())
    # In groups only commands are answered: chatter there is not a prompt.
    router.message.register(on_prompt, F.chat.type == ChatType.PRIVATE, F.text, ~F.text.startswith("/"))
    return router


async def on_generate(message: Message, user: UserView) -> None:
    await message.answer(
        _("Choose a model. Current: {model}.").format(model=model_title(user.chosen_model)),
        reply_markup=model_picker(user.level, user.chosen_model),
    )


async def on_pick(
    callback: CallbackQuery, callback_data: ModelPick, user: UserView, users: UserService, state: FSMContext
) -> None:
    spec = await pickable_model(callback, callback_data.model, user)
    if spec is None:
        return
    model = spec.id
    # Answer first: a callback left waiting while the database is busy expires ("query is too old").
    await callback.answer(_("Model: {model}").format(model=spec.title))
    await users.set_model(user.id, model)
    await state.set_state(GenerateFlow.waiting_prompt)
    text = _("Model: {model}. Now send me a description of the image.").format(model=spec.title)
    if isinstance(callback.message, Message):
        try:
            await callback.message.edit_text(text, reply_markup=model_picker(user.level, model))
        except TelegramBadRequest as exc:
            if "not modified" not in exc.message:  # a double tap changes nothing: nothing to say
                await callback.message.answer(text)  # too old to edit: say it anew


async def on_prompt(
    message: Message,
    bot: Bot,
    user: UserView,
    users: UserService,
    jobs: GenerationJobs,
    queue: JobQueue,
    clock: Clock,
    state: FSMContext,
    raw_state: str | None = None,
) -> None:
    """Validate, reserve and queue; the worker does the rest. Answers within milliseconds."""
    if raw_state is not None:  # leave "waiting for a prompt"; with Redis, no two writes for nothing
        await state.clear()
    try:
        parsed = parse_prompt(message.text or "")  # before anything is charged
    except FlagError as exc:
        await message.answer(flag_hint(exc))
        return
    found = await fresh_prompter(users, user)  # waits for the bulk gate: a crowd of prompts costs commands nothing
    if found is None:
        return
    fresh, preferences = found
    await queue_prompt(
        bot,
        message.chat.id,
        user=fresh,
        prompt=parsed.text,
        model=fresh.chosen_model,
        jobs=jobs,
        queue=queue,
        clock=clock,
        options=preferences.options(parsed.overrides),  # the flags win over /settings
    )


async def queue_prompt(
    bot: Bot,
    chat_id: int,
    *,
    user: UserView,
    prompt: str,
    model: ModelId,
    jobs: GenerationJobs,
    queue: JobQueue,
    clock: Clock,
    options: ImageOptions | None = None,
    kind: JobKind = JobKind.GENERATE,
    parent_id: int | None = None,
    input_file_id: str | None = None,
    running_text: str | None = None,
    waiting_text: str | None = None,
    charge: bool = True,
    prompt_used: str | None = None,
) -> Submitted:
    """A job exactly as a typed prompt makes one (levels, limits, the user's line, refusals, the
    status line, "busy" when the queue is down); the result buttons submit through here too.
    `user` must be freshly read: what is charged and which model runs never come from the cache."""
    submitted = await jobs.submit(
        user_id=user.id,
        chat_id=chat_id,
        level=user.level,
        prompt=prompt,
        model=model,
        options=options,
        locale=user.language_code,
        kind=kind,
        parent_id=parent_id,
        input_file_id=input_file_id,
        charge=charge,
        prompt_used=prompt_used,
    )
    if not submitted.accepted or submitted.generation_id is None:
        await _refused(bot, chat_id, submitted, user, model, clock)
        return submitted
    count = options.count if options is not None else 1
    if submitted.status is SubmitStatus.QUEUED and running_text is not None:
        text = running_text
    elif submitted.status is not SubmitStatus.QUEUED and waiting_text is not None:
        text = waiting_text
    elif submitted.status is SubmitStatus.QUEUED and count > 1:
        text = _("🎨 Generating {count} images with {model}…").format(count=count, model=model_title(model))
    elif submitted.status is SubmitStatus.QUEUED:
        text = _("🎨 Generating with {model}…").format(model=model_title(model))
    else:
        text = _("⏳ Queued with {model}: it starts when your current image is done.").format(model=model_title(model))
    status: Message | None = None
    try:
        status = await bot.send_message(chat_id, text)
        await jobs.set_status_message(submitted.generation_id, status.message_id)
    finally:  # the job is paid for: it runs even if the status line could not be shown
        if submitted.status is SubmitStatus.QUEUED:
            await _enqueue_or_withdraw(submitted.generation_id, status, jobs, queue)
    return submitted


async def _enqueue_or_withdraw(
    generation_id: int, status: Message | None, jobs: GenerationJobs, queue: JobQueue
) -> None:
    """The queue (Redis) is down: take the job back so nothing is charged; the error handler says "busy"."""
    try:
        await queue.enqueue(generation_id)
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("generation %s withdrawn: the queue is unreachable (%s)", generation_id, type(exc).__name__)
        await jobs.withdraw(generation_id)  # if the database is down too, recovery runs the job later
        if status is not None:
            await _delete_quietly(status)
        raise


async def _refused(bot: Bot, chat_id: int, submitted: Submitted, user: UserView, model: ModelId, clock: Clock) -> None:
    quota = submitted.quota
    if submitted.status is SubmitStatus.LIMIT_REACHED and quota is not None and not quota.exhausted:
        # Several images asked for, fewer left: nothing was taken; say how many still fit.
        await bot.send_message(
            chat_id,
            _("Only {left} images are left today. Ask for fewer (--n {left}) or change /settings.").format(
                left=quota.remaining
            ),
        )
    elif submitted.status is SubmitStatus.LIMIT_REACHED and submitted.quota is not None:
        await bot.send_message(
            chat_id,
            _("You have used all {limit} images for today. The limit resets at {reset}.").format(
                limit=submitted.quota.limit, reset=format_reset(submitted.quota.resets_at, clock.local_now())
            ),
        )
    elif submitted.status is SubmitStatus.FORBIDDEN:
        required = submitted.required_level or user.level
        await bot.send_message(
            chat_id,
            _("🔒 {model} is available from the {level} level. Choose another model with /generate.").format(
                model=model_title(model), level=level_name(required)
            ),
        )
    elif submitted.status is SubmitStatus.TOO_MANY:
        await bot.send_message(
            chat_id,
            _("You already have {count} images on the way. Please wait for them (or /cancel the waiting ones).").format(
                count=submitted.ahead
            ),
        )
    else:
        await bot.send_message(chat_id, _("That description is too long or empty. Please send a shorter text."))


async def _delete_quietly(message: Message) -> None:
    try:
        await message.delete()
    except TelegramAPIError as exc:  # an old or already-deleted status message is not worth failing over
        log.debug("status message not deleted: %s", type(exc).__name__)
