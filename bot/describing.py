"""A describe job in the worker: the user's photo, fetched within bounds, described by a vision model
in the user's language, sent as text with a "Generate from this" button.

Settled like an image job: the unit (if one was reserved: DESCRIBE_FREE=1 reserves none) is kept
only once Telegram has taken the description, and released on any failure, with a short localized
message that names the problem in the router's vocabulary. The description is stored on the row
before it is sent, so a job resumed after a restart does not ask the model again.
"""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import Iterator

import aiohttp
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.assist.errors import RouterError, RouterProblem
from bot.assist.vision import VisionDescriber
from bot.i18n import pick_locale
from bot.photos import PhotoRejected, download_photo
from bot.send_retry import with_retries
from bot.services.jobs import GenerationJobs, JobView, Settled
from bot.services.prompts import PromptRecords
from bot.texts import fit_html
from keyboards.describe import generate_from_keyboard
from models import GenerationStatus

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 4096


class DescribeRunner:
    def __init__(
        self,
        bot: Bot,
        i18n: I18n,
        jobs: GenerationJobs,
        records: PromptRecords,
        vision: VisionDescriber,
        *,
        max_bytes: int,
    ) -> None:
        self._bot = bot
        self._i18n = i18n
        self._jobs = jobs
        self._records = records
        self._vision = vision
        self._max_bytes = max_bytes

    async def run(self, job: JobView, owner: str) -> Settled | None:
        """Describe and deliver, or refund and say why; None when the lease moved to another worker."""
        text = job.prompt_used  # described already (the description is stored before it is sent)
        if text is None:
            try:
                text = await self._describe(job)
            except RouterError as exc:
                log.warning("generation %s: describe failed: %s", job.id, exc)
                return await self._fail(job, owner, f"router_{exc.problem.value}", self._problem_text(job, exc))
            except PhotoRejected as exc:
                log.info("generation %s: photo not described (%s)", job.id, exc)
                return await self._fail(job, owner, f"photo_{exc.reason}", self._photo_text(job, exc.reason))
            except (TelegramAPIError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("generation %s: photo not fetched (%s)", job.id, type(exc).__name__)
                return await self._fail(job, owner, "photo_unavailable", self._photo_text(job, "unavailable"))
            if not await self._records.record(job.id, owner, text):
                log.warning("generation %s: lease lost before sending the description", job.id)
                return None
        return await self._deliver(job, owner, text)

    async def _describe(self, job: JobView) -> str:
        if job.input_file_id is None:
            raise PhotoRejected("unreadable", "no photo on the job")
        data, mime = await download_photo(self._bot, job.input_file_id, self._max_bytes)
        return await self._vision.describe(data, mime, pick_locale(job.locale))

    async def _deliver(self, job: JobView, owner: str, description: str) -> Settled | None:
        if job.chat_id is None:
            return await self._jobs.finish(job.id, owner, GenerationStatus.UNDELIVERED, None, error_class="LookupError")
        chat_id = job.chat_id
        with self._locale(job.locale):
            text = fit_html("🔎 <b>" + html.escape(_("What I see")) + "</b>\n\n", description, "", MESSAGE_LIMIT)
            markup = generate_from_keyboard(job.id)
        try:
            sent = await with_retries(lambda: self._bot.send_message(chat_id, text, reply_markup=markup))
        except TelegramAPIError as exc:
            log.warning("generation %s: description not delivered (%s)", job.id, type(exc).__name__)
            settled = await self._jobs.finish(
                job.id, owner, GenerationStatus.UNDELIVERED, None, error_class=type(exc).__name__
            )
            if settled is not None and not isinstance(exc, TelegramForbiddenError):
                await self._clear_status(job)
            return settled
        settled, _marked = await self._jobs.settle_sent(job.id, owner, sent.message_id, None, delivered=1)
        await self._clear_status(job)
        return settled

    async def _fail(self, job: JobView, owner: str, error_class: str, text: str) -> Settled | None:
        settled = await self._jobs.finish(job.id, owner, GenerationStatus.FAILED, None, error_class=error_class)
        if settled is None:
            return None
        await self._clear_status(job)
        if job.chat_id is not None:
            try:
                await self._bot.send_message(job.chat_id, text)
            except TelegramAPIError as exc:
                log.info("could not tell chat %s: %s", job.chat_id, type(exc).__name__)
        return settled

    def _problem_text(self, job: JobView, exc: RouterError) -> str:
        with self._locale(job.locale):
            return problem_text(exc.problem)

    def _photo_text(self, job: JobView, reason: str) -> str:
        with self._locale(job.locale):
            if reason == "too_large":
                return _("This photo is too large for me to look at. Nothing was charged.")
            if reason == "unreadable":
                return _("I could not read this photo. Nothing was charged; please send another one.")
            return _("I could not fetch this photo from Telegram. Nothing was charged; please send it again.")

    async def _clear_status(self, job: JobView) -> None:
        if job.chat_id is None or job.status_message_id is None:
            return
        try:
            await self._bot.delete_message(job.chat_id, job.status_message_id)
        except TelegramAPIError as exc:
            log.debug("status message not deleted: %s", type(exc).__name__)

    @contextlib.contextmanager
    def _locale(self, locale: str | None) -> Iterator[None]:
        with self._i18n.context(), self._i18n.use_locale(pick_locale(locale)):
            yield


def problem_text(problem: RouterProblem) -> str:
    """What the user hears for each router problem (in the current locale); never the upstream text."""
    if problem is RouterProblem.KEY:
        return _("🔑 The image-describing service refused the bot's key. Nothing was charged.")
    if problem is RouterProblem.GATED:
        return _("🔒 The vision model is not open to this bot. Nothing was charged.")
    if problem is RouterProblem.MODEL:
        return _("❓ The vision model was not found. Nothing was charged.")
    if problem is RouterProblem.BUSY:
        return _("⏳ The vision model is busy right now. Nothing was charged; please try again in a minute.")
    if problem is RouterProblem.LOADING:
        return _("⏳ The vision model is still starting up. Nothing was charged; please try again in a minute.")
    return _("Sorry, I could not describe this photo just now. Nothing was charged; please try again later.")
