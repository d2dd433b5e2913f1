"""The buttons under a delivered result: 🔁 Regenerate, 🔀 Other model, 📎 Original.

Everything comes from the generation's row (callback data holds only its id), so the buttons work
after a restart and on any instance. Only the user who asked for the image may use them.
⬆️ Upscale and ✏️ Edit are shown by the keyboard and handled by their own routers.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.catalog import ModelId
from bot.clock import Clock
from bot.originals import document_name
from bot.queue import JobQueue
from bot.services.gallery import GalleryService, SentImage, StoredResult
from bot.services.jobs import GenerationJobs
from bot.services.originals import Original, OriginalsService
from bot.services.users import UserService, UserView
from handlers.generate import queue_prompt
from handlers.shared import fresh_user, pickable_model
from keyboards.results import ResultAction, ResultButton, ResultModel, other_model_picker

log = logging.getLogger(__name__)

MINE = {ResultAction.REGENERATE, ResultAction.OTHER_MODEL, ResultAction.ORIGINAL}


def router_factory() -> Router:
    router = Router(name="results")
    router.callback_query.register(on_result_button, ResultButton.filter(F.action.in_(MINE)))
    router.callback_query.register(on_other_model, ResultModel.filter())
    return router


async def owned_result(callback: CallbackQuery, gallery: GalleryService, generation_id: int) -> StoredResult | None:
    """The result if it exists and is the presser's; otherwise the callback is answered politely."""
    stored = await gallery.result(generation_id)
    if stored is None:
        await callback.answer(_("This image is no longer available."), show_alert=True)
        return None
    if stored.user_id != callback.from_user.id:
        await callback.answer(
            _("These buttons belong to someone else's image. Send me your own description to make one."),
            show_alert=True,
        )
        return None
    return stored


async def on_result_button(
    callback: CallbackQuery,
    callback_data: ResultButton,
    bot: Bot,
    user: UserView,
    users: UserService,
    jobs: GenerationJobs,
    queue: JobQueue,
    clock: Clock,
    gallery: GalleryService,
    originals: OriginalsService,
) -> None:
    stored = await owned_result(callback, gallery, callback_data.generation_id)
    if stored is None:
        return
    if callback_data.action is ResultAction.ORIGINAL:
        await send_originals(callback, bot, stored, originals)
    elif callback_data.action is ResultAction.OTHER_MODEL:
        await callback.answer()
        await bot.send_message(
            user.id,
            _("Choose a model for the same description:"),
            reply_markup=other_model_picker(stored.generation_id, user.level, stored.model),
        )
    else:
        await callback.answer(_("🔁 Once more, with a new seed"))
        await rerun(bot, stored, stored.model, users=users, user=user, jobs=jobs, queue=queue, clock=clock)


async def on_other_model(
    callback: CallbackQuery,
    callback_data: ResultModel,
    bot: Bot,
    user: UserView,
    users: UserService,
    jobs: GenerationJobs,
    queue: JobQueue,
    clock: Clock,
    gallery: GalleryService,
) -> None:
    spec = await pickable_model(callback, callback_data.model, user)
    if spec is None:
        return
    stored = await owned_result(callback, gallery, callback_data.generation_id)
    if stored is None:
        return
    await callback.answer(_("Model: {model}").format(model=spec.title))
    if isinstance(callback.message, Message):  # the picker has done its job: no second tap on it
        try:
            await callback.message.edit_text(_("Model: {model}").format(model=spec.title))
        except TelegramBadRequest as exc:
            log.debug("picker not closed: %s", exc.message[:100])
    await rerun(bot, stored, spec.id, users=users, user=user, jobs=jobs, queue=queue, clock=clock)


async def rerun(
    bot: Bot,
    stored: StoredResult,
    model: ModelId,
    *,
    users: UserService,
    user: UserView,
    jobs: GenerationJobs,
    queue: JobQueue,
    clock: Clock,
) -> None:
    """The same prompt and options with a new seed, as a new job that continues this one: levels,
    limits and refunds exactly as for a typed prompt. Answers in the user's private chat."""
    fresh = await fresh_user(users, user)
    if fresh is None:
        return
    await queue_prompt(
        bot,
        fresh.id,
        user=fresh,
        prompt=stored.prompt,
        model=model,
        jobs=jobs,
        queue=queue,
        clock=clock,
        options=replace(stored.options, seed=None),
        kind=stored.kind,
        parent_id=stored.generation_id,
        input_file_id=stored.input_file_id,
    )


async def send_originals(callback: CallbackQuery, bot: Bot, stored: StoredResult, originals: OriginalsService) -> None:
    """Each image as the untouched file the model made, no provider call. Telegram's photo is a
    re-encoded copy (and its file id cannot go as a document), so the provider's bytes kept for
    ORIGINALS_DAYS are uploaded once; the document's file id is then kept and reused."""
    if not stored.images:
        await callback.answer(_("This image is no longer available."), show_alert=True)
        return
    kept = await originals.of(stored.generation_id)
    plan = [(image, _source(stored, image, kept.get(image.position))) for image in stored.images]
    if all(source is None for _, source in plan):
        await callback.answer(_("The original is no longer kept."), show_alert=True)
        return
    await callback.answer(_("📎 Sending the file…"))
    chat_id = callback.from_user.id
    try:
        for image, source in plan:
            if source is None:
                continue
            message = await bot.send_document(chat_id, source)
            if isinstance(source, BufferedInputFile) and message.document is not None:
                await _remember(originals, stored.generation_id, image.position, message.document.file_id)
    except TelegramAPIError as exc:
        log.warning("original of generation %s not sent: %s", stored.generation_id, type(exc).__name__)
        await bot.send_message(chat_id, _("Telegram would not send that file just now. Please try again later."))
        return
    if any(source is None for _, source in plan):
        await bot.send_message(chat_id, _("The original of some of these images is no longer kept."))


def _source(stored: StoredResult, image: SentImage, original: Original | None) -> str | BufferedInputFile | None:
    """Telegram's document of the original if there is one, else the kept bytes, else nothing."""
    if original is not None and original.document_file_id is not None:
        return original.document_file_id
    if image.kind == "document":  # it went as a file: that file is the untouched one
        return image.file_id
    if original is not None and original.data is not None:
        name = document_name(stored.generation_id, image.position, original.mime_type)
        return BufferedInputFile(original.data, filename=name)
    return None


async def _remember(originals: OriginalsService, generation_id: int, position: int, file_id: str) -> None:
    """The file is with the user already: failing to note its id only means an upload next time."""
    try:
        await originals.remember_document(generation_id, position, file_id)
    except Exception as exc:
        log.warning("document id of generation %s not kept: %s", generation_id, type(exc).__name__)
