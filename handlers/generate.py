"""The model picker and the prompt → image flow."""

from __future__ import annotations

import html
import io
import logging
from contextlib import AsyncExitStack

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.chat_action import ChatActionSender
from aiogram.utils.i18n import gettext as _
from PIL import Image

from bot.catalog import MODELS
from bot.clock import Clock
from bot.providers.base import ModelId
from bot.services.generation import FailureReason, GeneratedImage, GenerationResult
from bot.services.jobs import GenerationJobs, JobOutcome, JobStatus
from bot.services.quota import Reservation
from bot.services.users import UserService, UserView
from bot.texts import CAPTION_LIMIT, fit_html, format_reset, level_name, model_title
from keyboards.menu import GENERATE, MenuButton
from keyboards.picker import ModelPick, model_picker

log = logging.getLogger(__name__)

PHOTO_MAX_BYTES = 10 * 1024 * 1024


class GenerateFlow(StatesGroup):
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
    try:
        model = ModelId(callback_data.model)
        spec = MODELS[model]
        if not spec.pickable:
            raise ValueError(model)
    except ValueError:
        await callback.answer(_("This model does not exist."), show_alert=True)
        return
    if not user.level.allows(spec.min_level):
        await callback.answer(
            _("🔒 {model} is available from the {level} level.").format(
                model=spec.title, level=level_name(spec.min_level)
            ),
            show_alert=True,
        )
        return
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
    message: Message, bot: Bot, user: UserView, jobs: GenerationJobs, clock: Clock, state: FSMContext
) -> None:
    await state.clear()
    prompt = (message.text or "").strip()
    model = user.chosen_model

    async def deliver(result: GenerationResult, reservation: Reservation) -> None:
        for image in result.images:
            await _send_image(message, image, _caption(result, image, prompt, reservation))

    async with AsyncExitStack() as progress:

        async def started() -> None:
            """Only a prompt that got a unit shows progress: a status line and a repeated chat action."""
            status = await message.answer(_("🎨 Generating with {model}…").format(model=model_title(model)))
            progress.push_async_callback(_delete_quietly, status)
            await progress.enter_async_context(ChatActionSender.upload_photo(bot=bot, chat_id=message.chat.id))

        outcome = await jobs.run(
            user_id=user.id,
            chat_id=message.chat.id,
            level=user.level,
            prompt=prompt,
            model=model,
            deliver=deliver,
            started=started,
        )
    await _report(message, outcome, user, clock)


async def _report(message: Message, outcome: JobOutcome, user: UserView, clock: Clock) -> None:
    if outcome.status is JobStatus.DELIVERED:
        return
    if outcome.status is JobStatus.LIMIT_REACHED and outcome.quota is not None:
        await message.answer(
            _("You have used all {limit} images for today. The limit resets at {reset}.").format(
                limit=outcome.quota.limit, reset=format_reset(outcome.quota.resets_at, clock.local_now())
            )
        )
    elif outcome.status is JobStatus.FORBIDDEN:
        required = outcome.required_level or user.level
        await message.answer(
            _("🔒 {model} is available from the {level} level. Choose another model with /generate.").format(
                model=model_title(user.chosen_model), level=level_name(required)
            )
        )
    elif outcome.failure is not None and outcome.failure.reason is FailureReason.INVALID_REQUEST:
        await message.answer(_("That description is too long or empty. Please send a shorter text."))
    else:
        await message.answer(
            _("Sorry, every image service failed just now. Your limit was not charged; please try again later.")
        )


def _caption(result: GenerationResult, image: GeneratedImage, prompt: str, reservation: Reservation) -> str:
    made_by = model_title(image.step)
    upstream = image.model.rsplit("/", 1)[-1]
    head = f"{MODELS[image.step].emoji} <b>{html.escape(made_by)}</b> <i>({html.escape(upstream)})</i>\n"
    if image.step != result.requested:
        head += (
            _("↪️ {requested} was unavailable, so {made_by} made this one.").format(
                requested=html.escape(model_title(result.requested)), made_by=html.escape(made_by)
            )
            + "\n"
        )
    if reservation.remaining is None:
        tail = "\n" + _("Images left today: unlimited")
    else:
        tail = "\n" + _("Images left today: {left} of {limit}").format(
            left=reservation.remaining, limit=reservation.limit
        )
    return fit_html(head, prompt, tail, CAPTION_LIMIT, wrap="📝 {}")


async def _send_image(message: Message, image: GeneratedImage, caption: str) -> None:
    """As a photo when Telegram will take it as one, otherwise as a file, so the image still arrives."""
    extension = image.mime_type.rsplit("/", 1)[-1].replace("jpeg", "jpg")
    file = BufferedInputFile(image.data, filename=f"image.{extension}")
    if _fits_photo(image.data):
        try:
            await message.answer_photo(file, caption=caption)
            return
        except TelegramBadRequest as exc:
            log.warning("photo rejected (%s); sending as a document", exc.message[:100])
    await message.answer_document(file, caption=caption)


def _fits_photo(data: bytes) -> bool:
    if len(data) > PHOTO_MAX_BYTES:
        return False
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
    return width + height <= 10000 and max(width, height) / max(min(width, height), 1) <= 20


async def _delete_quietly(message: Message) -> None:
    try:
        await message.delete()
    except Exception as exc:  # an old or already-deleted status message is not worth failing over
        log.debug("status message not deleted: %s", type(exc).__name__)
