"""The job queue, on taskiq: in memory when embedded (jobs run in this process), a Redis stream
with a consumer group when `REDIS_URL` is set (a message is acknowledged only when its job is
settled; one a dead worker held is claimed again after `JOB_REDELIVERY_TIMEOUT`).

A message carries only a generation id: the database row is the job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from taskiq import AsyncBroker, Context, InMemoryBroker, TaskiqDepends
from taskiq.acks import AcknowledgeType
from taskiq.kicker import AsyncKicker
from taskiq.receiver import Receiver
from taskiq_redis import RedisStreamBroker

from bot.config import Settings

log = logging.getLogger(__name__)

TASK_NAME = "imagebot.generation"

# Runs one job; True means settled (acknowledge the message), False means leave it for redelivery.
JobHandler = Callable[[int], Awaitable[bool]]


def create_broker(settings: Settings) -> AsyncBroker:
    if settings.redis_url is None:
        return InMemoryBroker(max_stored_results=1, propagate_exceptions=False)
    namespace = settings.redis_namespace
    return RedisStreamBroker(
        settings.redis_url,
        queue_name=f"{namespace}:jobs",
        consumer_group_name=f"{namespace}:workers",
        # taskiq-redis defaults to 10 minutes; a dead worker's job should come back much sooner.
        idle_timeout=int(settings.job_redelivery_timeout * 1000),
        # One message per read: a busy worker must not hoard messages that idle workers could run.
        xread_count=1,
        xread_block=1000,
        # The reclaim lock frees itself if the worker holding it dies.
        unacknowledged_lock_timeout=max(settings.job_redelivery_timeout, 5.0),
    )


class JobQueue:
    """Both sides of the queue: `enqueue` for front ends, `consume` for workers."""

    def __init__(self, broker: AsyncBroker) -> None:
        self.broker = broker
        self._kicker: AsyncKicker[[int], None] = AsyncKicker(TASK_NAME, broker, labels={})
        self._started = False
        self._local = 0  # in memory: jobs enqueued here and not yet finished
        self._drained = asyncio.Event()
        self._drained.set()

    @property
    def durable(self) -> bool:
        """Whether messages outlive this process (else start-up recovery re-enqueues)."""
        return not isinstance(self.broker, InMemoryBroker)

    async def start(self) -> None:
        if not self._started:
            await self.broker.startup()
            self._started = True

    async def enqueue(self, generation_id: int) -> None:
        if not self.durable:
            self._local += 1
            self._drained.clear()
        await self._kicker.kiq(generation_id)

    async def drained(self) -> None:
        """In memory: until every job enqueued here has run (tests and benchmarks wait on this)."""
        await self._drained.wait()

    def _done_locally(self) -> None:
        if not self.durable:
            self._local = max(self._local - 1, 0)
            if not self._local:
                self._drained.set()

    async def enqueue_many(self, generation_ids: Iterable[int]) -> None:
        for generation_id in generation_ids:
            await self.enqueue(generation_id)

    def register(self, handler: JobHandler) -> None:
        """Make this process a worker: messages are handed to `handler`, acknowledged when it says so."""

        async def run_generation(generation_id: int, context: Context = TaskiqDepends()) -> None:  # noqa: B008
            try:
                if await handler(generation_id) and context.is_ackable:
                    await context.ack()
            finally:
                self._done_locally()

        self.broker.register_task(run_generation, task_name=TASK_NAME, ack_type=AcknowledgeType.MANUAL.value)

    async def consume(self, stop: asyncio.Event, concurrency: int, grace: float) -> None:
        """Read the durable queue until `stop` is set, then wait up to `grace` for running jobs.

        The in-memory broker runs jobs as it receives them: nothing to read.
        """
        if not self.durable:
            await stop.wait()
            return
        receiver = Receiver(
            self.broker,
            max_async_tasks=concurrency,
            propagate_exceptions=False,
            run_startup=False,
            ack_type=AcknowledgeType.MANUAL,
            wait_tasks_timeout=grace,
        )
        await receiver.listen(stop)

    async def ping(self) -> None:
        """Raises when the broker cannot be reached (for /healthz)."""
        if isinstance(self.broker, RedisStreamBroker):
            from redis.asyncio import Redis

            async with Redis(connection_pool=self.broker.connection_pool) as redis:
                await redis.ping()

    async def close(self) -> None:
        if self._started:
            self._started = False
            await self.broker.shutdown()
