"""Everything a worker says on Telegram: the image with its caption, progress, and short notices.

Workers know no Dispatcher, so the locale is set here from the one stored with the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiogram import Bot
from aiogram.enums import ChatAction
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from PIL import Image

from bot.album import send_album
from bot.captions import result_caption
from bot.i18n import pick_locale
from bot.photo_jobs import PHOTO_KINDS
from bot.photo_texts import photo_caption, photo_failure_text
from bot.send_retry import PASSING_FAULTS, with_retries
from bot.services.gallery import SentImage
from bot.services.generation import FailureReason, GeneratedImage, GenerationFailed, GenerationResult
from bot.services.jobs import JobView, Settled
from keyboards.results import result_keyboard

log = logging.getLogger(__name__)

PHOTO_MAX_BYTES = 10 * 1024 * 1024
CHAT_ACTION_EVERY = 4.5  # Telegram shows an action for about 5 s


@dataclass(frozen=True, slots=True)
class Sent:
    """What reached the chat: the ids of the messages sent, and why the rest did not go (if any).

    `messages` are the sent messages themselves, one per delivered image in the result's order (an
    album's items too): their photo (or document) file ids are what later actions reuse.
    """

    message_ids: list[int] = field(default_factory=list)
    failure: TelegramAPIError | None = None
    messages: list[Message] = field(default_factory=list)  # as Telegram returned them: their file ids are kept

    @property
    def first(self) -> int | None:
        return self.message_ids[0] if self.message_ids else None

    @property
    def file_ids(self) -> list[str | None]:
        """Telegram's file id of each delivered image, in order (the largest photo size, or the document)."""
        ids: list[str | None] = []
        for message in self.messages:
            if message.photo:
                ids.append(message.photo[-1].file_id)
            else:
                ids.append(message.document.file_id if message.document else None)
        return ids

    @property
    def blocked(self) -> bool:
        return isinstance(self.failure, TelegramForbiddenError)


class Delivery:
    def __init__(self, bot: Bot, i18n: I18n) -> None:
        self._bot = bot
        self._i18n = i18n

    @contextlib.contextmanager
    def _locale(self, locale: str | None):  # type: ignore[no-untyped-def]
        with self._i18n.context(), self._i18n.use_locale(pick_locale(locale)):
            yield

    @contextlib.asynccontextmanager
    async def progress(self, job: JobView) -> AsyncIterator[None]:
        """ "sending photo…" repeated while the work runs; a failure to show it is never an error."""
        if job.chat_id is None:
            yield
            return
        chat_id = job.chat_id

        async def repeat() -> None:
            while True:
                try:
                    await self._bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
                except TelegramAPIError as exc:
                    log.debug("chat action not shown: %s", type(exc).__name__)
                    return
                await asyncio.sleep(CHAT_ACTION_EVERY)

        task = asyncio.create_task(repeat(), name=f"chat-action-{job.id}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def send_images(
        self,
        job: JobView,
        result: GenerationResult,
        left: int | None,
        limit: int,
        *,
        upscale: bool = False,
        prompt_used: str | None = None,
    ) -> Sent:
        """Send the images in order until one cannot go; the message ids are the proof of delivery.

        A single image carries the result buttons itself; several get them in `result_buttons` after.
        `prompt_used`: what the provider got, when prompt help rewrote the user's prompt: the caption
        shows it, and a button offers the user's own words instead."""
        assert job.chat_id is not None
        messages: list[Message] = []
        helped = prompt_used is not None and prompt_used != job.prompt
        shown = prompt_used or job.prompt
        with self._locale(job.locale):
            if len(result.images) > 1 and all(_fits_photo(image.data) for image in result.images):
                caption = result_caption(result, result.images, shown, left, limit, helped=helped)
                try:
                    album = await send_album(self._bot, job.chat_id, result.images, caption)
                except TelegramAPIError as exc:
                    return Sent([], exc)
                if album is not None:
                    return Sent([m.message_id for m in album], messages=album)
            markup = (
                result_keyboard(job.id, upscale=upscale, original_prompt=helped) if len(result.images) == 1 else None
            )
            for image in result.images:
                if job.kind in PHOTO_KINDS:
                    caption = photo_caption(job, image, left, limit)
                else:
                    caption = result_caption(result, [image], shown, left, limit, helped=helped)
                try:
                    sent = await self._send_image(job.chat_id, image, caption, markup)
                except TelegramAPIError as exc:
                    return Sent([m.message_id for m in messages], exc, messages)
                messages.append(sent)
        return Sent([m.message_id for m in messages], messages=messages)

    async def result_buttons(
        self, job: JobView, count: int, *, upscale: bool = False, original_prompt: bool = False
    ) -> None:
        """Several images (an album cannot carry a keyboard): one short message with the buttons follows."""
        if job.chat_id is None:
            return
        with self._locale(job.locale):
            text = _("⬆️ {count} images. What next?").format(count=count)
            markup = result_keyboard(job.id, upscale=upscale, original_prompt=original_prompt)
        try:
            await self._bot.send_message(job.chat_id, text, reply_markup=markup)
        except TelegramAPIError as exc:  # the images are there; the buttons are a convenience
            log.info("result buttons for generation %s not sent: %s", job.id, type(exc).__name__)

    async def _send_image(
        self, chat_id: int, image: GeneratedImage, caption: str, markup: InlineKeyboardMarkup | None = None
    ) -> Message:
        """As a photo when Telegram will take it as one, otherwise (or when photos keep failing) as a
        file, so the image still arrives. 5xx and network errors are retried with backoff first."""
        extension = image.mime_type.rsplit("/", 1)[-1].replace("jpeg", "jpg")
        file = BufferedInputFile(image.data, filename=f"image.{extension}")
        if _fits_photo(image.data):
            try:
                return await with_retries(
                    lambda: self._bot.send_photo(chat_id, file, caption=caption, reply_markup=markup)
                )
            except TelegramBadRequest as exc:
                log.warning("photo rejected (%s); sending as a document", exc.message[:100])
            except PASSING_FAULTS as exc:
                log.warning("photo not sent after retries (%s); sending as a document", type(exc).__name__)
        return await with_retries(lambda: self._bot.send_document(chat_id, file, caption=caption, reply_markup=markup))

    async def clear_status(self, chat_id: int | None, message_id: int | None) -> None:
        if chat_id is None or message_id is None:
            return
        try:
            await self._bot.delete_message(chat_id, message_id)
        except TelegramAPIError as exc:  # an old or already-deleted status message is not worth failing over
            log.debug("status message not deleted: %s", type(exc).__name__)

    async def failed(self, job: JobView, failure: GenerationFailed) -> None:
        with self._locale(job.locale):
            if job.kind in PHOTO_KINDS:
                text = photo_failure_text(job, failure)
            elif failure.reason is FailureReason.INVALID_REQUEST:
                text = _("That description is too long or empty. Please send a shorter text.")
            else:
                text = _(
                    "Sorry, every image service failed just now. Your limit was not charged; please try again later."
                )
        await self.notify(job.chat_id, text)

    async def refused(self, job: JobView) -> None:
        """A content filter (a provider's or the word list) declined the prompt: say so, never "failed"."""
        with self._locale(job.locale):
            text = _(
                "🚫 The image model's content policy refused this request. Nothing was charged; "
                "please try a different description."
            )
        await self.notify(job.chat_id, text)

    async def undelivered(self, job: JobView) -> None:
        """Telegram's fault, not the image services': the message says so."""
        with self._locale(job.locale):
            text = _("I made your image but Telegram would not take it. Your limit was not charged; please try again.")
        await self.notify(job.chat_id, text)

    async def partly_delivered(self, job: JobView, missing: int) -> None:
        with self._locale(job.locale):
            text = _("Telegram would not take {missing} of your images. Those were not charged.").format(
                missing=missing
            )
        await self.notify(job.chat_id, text)

    async def given_up(self, job: Settled) -> None:
        with self._locale(job.locale):
            text = _(
                "Your image request failed several times and was stopped. Nothing was charged — please send it again."
            )
        await self.clear_status(job.chat_id, job.status_message_id)
        await self.notify(job.chat_id, text)

    async def interrupted(self, job: Settled) -> None:
        with self._locale(job.locale):
            text = _(
                "Your last image request was interrupted by a restart. Nothing was charged — please send it again."
            )
        await self.clear_status(job.chat_id, job.status_message_id)
        await self.notify(job.chat_id, text)

    async def notify(self, chat_id: int | None, text: str) -> None:
        if chat_id is None:
            return
        try:
            await self._bot.send_message(chat_id, text)
        except TelegramAPIError as exc:
            log.info("could not tell chat %s: %s", chat_id, type(exc).__name__)


def kept_images(messages: list[Message], result: GenerationResult) -> list[SentImage]:
    """What to store of each sent message: its file id (the largest photo size, or the document), and
    the seed and size the provider reported for that image."""
    kept: list[SentImage] = []
    for position, message in enumerate(messages):
        image = result.images[position] if position < len(result.images) else None
        size = _size_of(image) if image is not None else (None, None)
        seed = image.seed if image is not None else None
        if message.photo:
            largest = message.photo[-1]
            kind, file_id, unique = "photo", largest.file_id, largest.file_unique_id
        elif message.document is not None:
            kind, file_id, unique = "document", message.document.file_id, message.document.file_unique_id
        else:
            continue
        kept.append(SentImage(position, message.chat.id, message.message_id, kind, file_id, unique, *size, seed=seed))
    return kept


def _size_of(image: GeneratedImage) -> tuple[int | None, int | None]:
    if image.width and image.height:
        return image.width, image.height
    try:
        with Image.open(io.BytesIO(image.data)) as img:
            return img.size
    except Exception:  # only a record: an undecodable header leaves the size unknown
        return None, None


def _fits_photo(data: bytes) -> bool:
    if len(data) > PHOTO_MAX_BYTES:
        return False
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
    return width + height <= 10000 and max(width, height) / max(min(width, height), 1) <= 20
