"""Where an API job's images go instead of a Telegram chat: the result store in the database.

The worker hands a finished API job here. Storing the images is its delivery: the job is then marked
sent (message id 0: no Telegram message, but from here on never refunded or run again) and closed as
delivered, charging every image, since every image is in the store for the waiting HTTP request.
A job finished after its request stopped waiting (API_TIMEOUT) is closed undelivered and refunded.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.clock import Clock
from bot.services.api_files import ApiFiles
from bot.services.generation import GenerationResult
from bot.services.jobs import GenerationJobs, JobView, Settled
from models import GenerationStatus

log = logging.getLogger(__name__)

API_SOURCE = "api"
STORED = 0  # sent_message_id of an API job whose images are in the store


class ApiResults:
    def __init__(self, jobs: GenerationJobs, files: ApiFiles, clock: Clock, timeout: float) -> None:
        self._jobs = jobs
        self._files = files
        self._clock = clock
        self._timeout = timedelta(seconds=timeout)  # API_TIMEOUT: how long the HTTP request waits

    async def deliver(
        self, job: JobView, result: GenerationResult, owner: str, lease: timedelta
    ) -> tuple[Settled | None, bool]:
        """Store and settle; the flag says this worker recorded the job as delivered."""
        if not await self._jobs.renew(job.id, owner, lease):
            log.warning("generation %s: lease lost before storing; left to its new holder", job.id)
            return None, False
        if job.enqueued_at is not None and self._clock.now() - job.enqueued_at > self._timeout:
            # Its request has given up (504) or died with its process (a job resumed after a restart):
            # nobody will collect the images, so nothing is charged.
            log.warning("generation %s: API caller no longer waiting; unit(s) released", job.id)
            settled = await self._jobs.finish(
                job.id, owner, GenerationStatus.UNDELIVERED, result, error_class="NobodyWaiting"
            )
            return settled, False
        await self._files.store_results(job.id, [(image.data, image.mime_type) for image in result.images])
        made = len(result.images)
        return await self._jobs.settle_sent(job.id, owner, STORED, result, delivered=made)
