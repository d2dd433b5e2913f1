"""Jobs nobody is working on any more go back on the queue; only those too old to resume are refunded.

Embedded start-up takes over every unfinished job (the in-memory queue died with the last
process). Otherwise, and periodically, only jobs whose lease ran out or whose message was lost.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.config import Settings
from bot.delivery import Delivery
from bot.queue import JobQueue
from bot.services.jobs import GenerationJobs

log = logging.getLogger(__name__)

# A queued job not put on the queue for this many redelivery timeouts has probably lost its message.
STALE_FACTOR = 10


class Recovery:
    def __init__(self, jobs: GenerationJobs, queue: JobQueue, delivery: Delivery, settings: Settings) -> None:
        self._jobs = jobs
        self._queue = queue
        self._delivery = delivery
        self._stale_after = timedelta(seconds=settings.job_redelivery_timeout * STALE_FACTOR)

    @property
    def every(self) -> float:
        """How often the periodic sweep runs: well inside one lease, so a dead worker's job waits little."""
        return max(self._stale_after.total_seconds() / STALE_FACTOR / 2, 0.5)

    async def run(self, *, take_over: bool = False) -> int:
        """One sweep; returns how many jobs went back on the queue."""
        result = await self._jobs.recover(take_over=take_over, stale_after=self._stale_after)
        await self._queue.enqueue_many(result.requeued)
        for settled in result.refunded:
            await self._delivery.interrupted(settled)
        return len(result.requeued)
