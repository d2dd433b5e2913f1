"""Edit and upscale jobs in the worker: fetch the photo from Telegram, bounded, then the editing service.

The photo is fetched by the file_id stored on the job (getFile, then the file download), refused
before download when getFile reports more than PHOTO_MAX_BYTES, cut off if the download runs past it
anyway, and decoded within the pixel cap. A photo that cannot be had is a failure with nothing charged.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time

import aiohttp
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from PIL import Image

from bot.photos import PHOTO_MAX_BYTES, max_pixels
from bot.providers.base import ErrorKind, ProviderError, decode_image
from bot.providers.limits import TooLarge
from bot.services.api_files import ApiFiles, is_input_ref
from bot.services.generation import Attempt, FailureReason, GenerationFailed, GenerationOutcome, GenerationService
from bot.services.jobs import JobView
from bot.timing import elapsed_ms
from models import JobKind

log = logging.getLogger(__name__)

PHOTO_KINDS = frozenset({JobKind.EDIT, JobKind.UPSCALE})
DOWNLOAD_TIMEOUT = 30
# GenerationFailed.detail of a photo that could not be used (bot/photo_texts.py words them).
PHOTO_TOO_LARGE = "photo_too_large"
PHOTO_UNAVAILABLE = "photo_unavailable"
PHOTO_UNREADABLE = "photo_unreadable"


class _CappedBuffer(io.BytesIO):
    """A download destination that stops the download once it passes `cap` bytes."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self._cap = cap

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.tell() + len(data) > self._cap:
            raise TooLarge(f"download is over the {self._cap}-byte cap")
        return super().write(data)


class PhotoJobs:
    def __init__(
        self,
        bot: Bot,
        generation: GenerationService,
        api_files: ApiFiles | None = None,
        *,
        max_bytes: int = PHOTO_MAX_BYTES,
    ) -> None:
        self._bot = bot
        self._generation = generation  # its `editing` does the work
        self._api_files = api_files  # photos uploaded through the HTTP API (`api:<id>` references)
        self._max_bytes = max_bytes

    async def run(self, job: JobView) -> GenerationOutcome:
        editing = self._generation.editing
        if editing is None:
            return GenerationFailed(job.model, FailureReason.NO_PROVIDER, [])
        fetched = await self._fetch(job)
        if isinstance(fetched, GenerationFailed):
            return fetched
        data, mime_type = fetched
        if job.kind is JobKind.UPSCALE:
            return await editing.upscale(data, mime_type, job.model)
        return await editing.edit(data, mime_type, job.prompt, job.model)

    async def _fetch(self, job: JobView) -> tuple[bytes, str] | GenerationFailed:
        started = time.monotonic()
        if not job.input_file_id:
            return self._failed(job, PHOTO_UNAVAILABLE, "no photo on the job", started)
        if is_input_ref(job.input_file_id):
            stored = await self._api_files.input_for(job.input_file_id) if self._api_files is not None else None
            if stored is None:
                return self._failed(job, PHOTO_UNAVAILABLE, "API upload expired or unknown", started)
            return await self._decoded(job, stored.data, started)
        try:
            file = await self._bot.get_file(job.input_file_id)
            if file.file_size is not None and file.file_size > self._max_bytes:
                return self._failed(job, PHOTO_TOO_LARGE, f"{file.file_size} bytes reported", started, too_large=True)
            if not file.file_path:
                return self._failed(job, PHOTO_UNAVAILABLE, "getFile gave no file_path", started)
            buffer = _CappedBuffer(self._max_bytes)
            await self._bot.download_file(file.file_path, buffer, timeout=DOWNLOAD_TIMEOUT)
        except TooLarge as exc:
            return self._failed(job, PHOTO_TOO_LARGE, str(exc), started, too_large=True)
        except (TelegramAPIError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("generation %s: photo not fetched (%s)", job.id, type(exc).__name__)
            return self._failed(job, PHOTO_UNAVAILABLE, type(exc).__name__, started)
        return await self._decoded(job, buffer.getvalue(), started)

    async def _decoded(self, job: JobView, raw: bytes, started: float) -> tuple[bytes, str] | GenerationFailed:
        """Decoded within the byte and pixel caps, wherever the photo came from."""
        try:
            photo = await asyncio.to_thread(decode_image, raw, "telegram", "photo", max_bytes=self._max_bytes)
        except ProviderError as exc:
            too_large = exc.kind is ErrorKind.TOO_LARGE
            return self._failed(
                job, PHOTO_TOO_LARGE if too_large else PHOTO_UNREADABLE, exc.detail, started, too_large=too_large
            )
        if not _within_pixels(photo.data, max_pixels(job.kind)):
            return self._failed(job, PHOTO_TOO_LARGE, "over the pixel cap of this job", started, too_large=True)
        return photo.data, photo.mime_type

    def _failed(
        self, job: JobView, code: str, why: str, started: float, *, too_large: bool = False
    ) -> GenerationFailed:
        log.info("generation %s: input photo refused: %s (%s)", job.id, code, why)
        kind = ErrorKind.TOO_LARGE if too_large else ErrorKind.BAD_REQUEST
        attempt = Attempt("telegram", "getFile", kind.value, None, why[:300], elapsed_ms(started))
        return GenerationFailed(job.model, FailureReason.INVALID_REQUEST, [attempt], elapsed_ms(started), detail=code)


def _within_pixels(data: bytes, cap: int) -> bool:
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
    return width * height <= cap
