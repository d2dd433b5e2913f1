"""An HTTP API call for images, run as a job like a chat prompt: same levels, daily limit, queue,
worker and refunds. The caller's request waits here until the row is final (on any instance: the row
and the result store are in the database), then gets the stored images or the reason there are none.
Nothing here knows aiohttp or aiogram.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from enum import StrEnum

from bot.api_results import API_SOURCE
from bot.catalog import ModelId
from bot.clock import Clock
from bot.levels import Level
from bot.providers.base import ImageOptions
from bot.queue import JobQueue
from bot.services.api_files import ApiFiles, StoredImage
from bot.services.jobs import FINAL, GenerationJobs, SubmitStatus, Submitted
from bot.services.user_view import UserView
from models import GenerationStatus, JobKind

log = logging.getLogger(__name__)

TOO_MANY_RETRY_AFTER = 10.0  # seconds: the user's queue is full; one of their jobs will end soon
POLL_FIRST, POLL_MAX = 0.05, 1.0


@dataclass(frozen=True, slots=True)
class ImageCall:
    """What the caller asked for, already validated for shape by the web layer."""

    prompt: str
    model: ModelId
    count: int = 1
    width: int | None = None
    height: int | None = None
    kind: JobKind = JobKind.GENERATE
    input_file_id: str | None = None


class CallStatus(StrEnum):
    DONE = "done"
    FORBIDDEN = "forbidden"  # the model is above the user's level
    LIMIT_REACHED = "limit_reached"
    TOO_MANY = "too_many"
    INVALID = "invalid"
    REFUSED = "refused"  # a content filter declined it
    FAILED = "failed"  # every provider failed
    UNAVAILABLE = "unavailable"  # queue unreachable, job interrupted or undeliverable
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class CallOutcome:
    status: CallStatus
    images: list[StoredImage] = field(default_factory=list)
    generation_id: int | None = None
    required_level: Level | None = None
    retry_after: float = 0.0
    detail: str = ""


_FINAL_TO_CALL = {
    GenerationStatus.REFUSED: CallStatus.REFUSED,
    GenerationStatus.FAILED: CallStatus.FAILED,
}


class ApiGeneration:
    def __init__(
        self,
        jobs: GenerationJobs,
        queue: JobQueue,
        files: ApiFiles,
        clock: Clock,
        timeout: float,
    ) -> None:
        self._jobs = jobs
        self._queue = queue
        self._files = files
        self._clock = clock
        self._timeout = timeout

    async def run(self, user: UserView, call: ImageCall) -> CallOutcome:
        submitted = await self._jobs.submit(
            user_id=user.id,
            chat_id=None,
            level=user.level,
            prompt=call.prompt,
            model=call.model,
            options=ImageOptions(width=call.width, height=call.height, count=call.count),
            locale=user.language_code,
            kind=call.kind,
            input_file_id=call.input_file_id,
            source=API_SOURCE,
        )
        if not submitted.accepted or submitted.generation_id is None:
            return self._refused(submitted)
        generation_id = submitted.generation_id
        if submitted.status is SubmitStatus.QUEUED:
            try:
                await self._queue.enqueue(generation_id)
            except Exception as exc:
                log.warning("API generation %s withdrawn: queue unreachable (%s)", generation_id, type(exc).__name__)
                await self._jobs.withdraw(generation_id)
                return CallOutcome(CallStatus.UNAVAILABLE, generation_id=generation_id)
        return await self._wait(generation_id)

    def _refused(self, submitted: Submitted) -> CallOutcome:
        if submitted.status is SubmitStatus.FORBIDDEN:
            return CallOutcome(CallStatus.FORBIDDEN, required_level=submitted.required_level)
        if submitted.status is SubmitStatus.INVALID:
            return CallOutcome(CallStatus.INVALID, detail=submitted.detail)
        if submitted.status is SubmitStatus.TOO_MANY:
            return CallOutcome(CallStatus.TOO_MANY, retry_after=TOO_MANY_RETRY_AFTER)
        quota = submitted.quota
        retry = (quota.resets_at - self._clock.now()).total_seconds() if quota is not None else 60.0
        return CallOutcome(CallStatus.LIMIT_REACHED, retry_after=max(retry, 1.0))

    async def _wait(self, generation_id: int) -> CallOutcome:
        """Poll the row until it is final; on timeout a job no worker took yet is withdrawn, uncharged."""
        delay = POLL_FIRST
        try:
            async with asyncio.timeout(self._timeout):
                while True:
                    status = await self._jobs.status(generation_id)
                    if status is not None and status in FINAL:
                        break
                    await asyncio.sleep(delay)
                    delay = min(delay * 1.5, POLL_MAX)
        except TimeoutError:
            withdrawn = await self._jobs.withdraw(generation_id)
            log.warning("API generation %s: no result in %.0f s%s", generation_id, self._timeout,
                        " (withdrawn, uncharged)" if withdrawn else "")  # fmt: skip
            return CallOutcome(CallStatus.TIMEOUT, generation_id=generation_id)
        if status is GenerationStatus.DELIVERED:
            images = await self._files.results(generation_id)
            if images:
                return CallOutcome(CallStatus.DONE, images, generation_id)
            log.warning("API generation %s delivered, but its images have expired", generation_id)
        return CallOutcome(_FINAL_TO_CALL.get(status, CallStatus.UNAVAILABLE), generation_id=generation_id)
