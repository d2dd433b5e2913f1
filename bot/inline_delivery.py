"""Inline jobs: the image replaces an inline message instead of arriving as a new one.

An inline message cannot take an upload, so the image is sent to a chat first (the user's private
chat with the bot, or STORAGE_CHAT_ID) and the inline message is then edited to that photo's file_id.
Failures edit the inline message into a short notice. The worker runs inline jobs like any other
and calls the same methods; every job without an `inline_message_id` goes to `Delivery` unchanged.

What counts as delivered: the photo in the user's private chat is the user's copy, so it alone is
proof (the inline edit may fail on a message deleted meanwhile). A photo in the storage chat reaches
nobody until the inline message shows it: if that edit fails, the unit comes back.
"""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import AsyncIterator

from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.types import InputMediaDocument, InputMediaPhoto, Message
from aiogram.utils.i18n import gettext as _

from bot.captions import result_caption
from bot.catalog import MODELS
from bot.delivery import Delivery, Sent
from bot.send_retry import with_retries
from bot.services.generation import FailureReason, GeneratedImage, GenerationFailed, GenerationResult
from bot.services.jobs import JobView, Settled
from bot.texts import CAPTION_LIMIT, fit_html, model_title, start_first_text
from keyboards.inline import again_keyboard

log = logging.getLogger(__name__)


class InlineAwareDelivery(Delivery):
    """`Delivery`, except for jobs that carry an inline message id."""

    @contextlib.asynccontextmanager
    async def progress(self, job: JobView) -> AsyncIterator[None]:
        if job.inline_message_id is None:
            async with super().progress(job):
                yield
            return
        yield  # the inline message already says "generating"; a chat action would go to the upload chat

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
        if job.inline_message_id is None:
            return await super().send_images(job, result, left, limit, upscale=upscale, prompt_used=prompt_used)
        assert job.chat_id is not None
        image = result.first  # an inline message holds one image; inline jobs reserve one unit
        private = job.chat_id == job.user_id
        with self._locale(job.locale):
            upload_caption = result_caption(result, [image], job.prompt, left, limit) if private else f"#{job.id}"
            inline_caption = inline_caption_for(image, job.prompt)
            keyboard = again_keyboard()
        try:
            uploaded = await self._send_image(job.chat_id, image, upload_caption)
        except TelegramForbiddenError as exc:
            if not private:  # the bot was removed from the storage chat: the operator's fault, not the user's
                log.error("generation %s: STORAGE_CHAT_ID %s refuses the bot's posts", job.id, job.chat_id)
                return Sent([], TelegramAPIError(exc.method, exc.message))
            await self._edit_inline(job.inline_message_id, job.locale, await self._start_first(job.locale))
            return Sent([], exc)  # the worker marks the user unreachable and releases the unit
        except TelegramAPIError as exc:
            return Sent([], exc)  # the worker releases the unit and calls `undelivered`
        media = _media_of(uploaded, inline_caption)
        try:
            await with_retries(
                lambda: self._bot.edit_message_media(
                    media=media, inline_message_id=job.inline_message_id, reply_markup=keyboard
                )
            )
        except TelegramAPIError as exc:
            log.warning("generation %s: inline message not edited (%s)", job.id, type(exc).__name__)
            if not private:
                return Sent([], exc)
        return Sent([uploaded.message_id], messages=[uploaded])  # kept for /history like any result

    async def failed(self, job: JobView, failure: GenerationFailed) -> None:
        if job.inline_message_id is None:
            return await super().failed(job, failure)
        with self._locale(job.locale):
            if failure.reason is FailureReason.INVALID_REQUEST:
                text = _("That description is too long or empty. Please send a shorter text.")
            else:
                text = _(
                    "Sorry, every image service failed just now. Your limit was not charged; please try again later."
                )
        await self._edit_inline(job.inline_message_id, job.locale, text)

    async def refused(self, job: JobView) -> None:
        if job.inline_message_id is None:
            return await super().refused(job)
        with self._locale(job.locale):
            text = _(
                "🚫 The image model's content policy refused this request. Nothing was charged; "
                "please try a different description."
            )
        await self._edit_inline(job.inline_message_id, job.locale, text)

    async def undelivered(self, job: JobView) -> None:
        if job.inline_message_id is None:
            return await super().undelivered(job)
        with self._locale(job.locale):
            text = _("I made your image but Telegram would not take it. Your limit was not charged; please try again.")
        await self._edit_inline(job.inline_message_id, job.locale, text)

    async def given_up(self, job: Settled) -> None:
        if job.inline_message_id is None:
            return await super().given_up(job)
        with self._locale(job.locale):
            text = _(
                "Your image request failed several times and was stopped. Nothing was charged — please send it again."
            )
        await self._edit_inline(job.inline_message_id, job.locale, text)

    async def interrupted(self, job: Settled) -> None:
        if job.inline_message_id is None:
            return await super().interrupted(job)
        with self._locale(job.locale):
            text = _(
                "Your last image request was interrupted by a restart. Nothing was charged — please send it again."
            )
        await self._edit_inline(job.inline_message_id, job.locale, text)

    async def _start_first(self, locale: str | None) -> str:
        me = await self._bot.me()
        with self._locale(locale):
            return start_first_text(me.username or "")

    async def _edit_inline(self, inline_message_id: str, locale: str | None, text: str) -> None:
        """The notice replaces the "generating" text; a message deleted meanwhile is not worth failing over."""
        with self._locale(locale):
            keyboard = again_keyboard()
        try:
            await self._bot.edit_message_text(text=text, inline_message_id=inline_message_id, reply_markup=keyboard)
        except TelegramAPIError as exc:
            log.info("inline message not edited: %s", type(exc).__name__)


def inline_caption_for(image: GeneratedImage, prompt: str) -> str:
    """Model and the escaped prompt cut to fit: the chat sees it, so nothing about the user's limit."""
    head = f"{MODELS[image.step].emoji} <b>{html.escape(model_title(image.step))}</b>\n"
    return fit_html(head, prompt, "", CAPTION_LIMIT, wrap="📝 {}")


def _media_of(message: Message, caption: str) -> InputMediaPhoto | InputMediaDocument:
    """The uploaded file by its id (a photo, or the document a too-large image went as)."""
    if message.photo:
        return InputMediaPhoto(media=message.photo[-1].file_id, caption=caption)
    assert message.document is not None, "sendDocument answers with the document"
    return InputMediaDocument(media=message.document.file_id, caption=caption)
