"""The job queue, on taskiq: in memory when embedded (jobs run in this process), a Redis stream
with a consumer group when `REDIS_URL` is set (a message is acknowledged only when its job is
settled; one a dead worker held is claimed again after `JOB_REDELIVERY_TIMEOUT`).

A message carries only a generation id: the database row is the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from redis.exceptions import ResponseError
from taskiq import AsyncBroker, Context, InMemoryBroker, TaskiqDepends
from taskiq.acks import AcknowledgeType
from taskiq.kicker import AsyncKicker
from taskiq.receiver import Receiver
from taskiq_redis import RedisStreamBroker

from bot.config import Settings
from bot.faults import is_outage

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
        # A group declared after messages arrived (first start, or a Redis that lost its data) must
        # still see them: start at the stream's beginning, not at "$" (only new messages).
        consumer_id="0",
        # Acknowledged entries stay in a stream; keep it bounded (a trimmed, unfinished job is
        # found again by the recovery sweep: the row is the job).
        maxlen=100_000,
        # One message per read: a busy worker must not hoard messages that idle workers could run.
        xread_count=1,
        xread_block=1000,
        # The reclaim lock frees itself if the worker holding it dies.
        unacknowledged_lock_timeout=max(settings.job_redelivery_timeout, 5.0),
    )


def _lost_group(exc: BaseException) -> bool:
    """NOGROUP: Redis restarted without its data; declaring the group again fixes it."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_lost_group(member) for member in exc.exceptions)
    return isinstance(exc, ResponseError) and "NOGROUP" in str(exc)


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
        if self.durable:
            await self._kicker.kiq(generation_id)
            return
        self._local += 1
        self._drained.clear()
        try:
            await self._kicker.kiq(generation_id)
        except BaseException:
            self._done_locally()
            raise

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
            except asyncio.CancelledError:
                # A stopping worker handed the job back (the worker logs it); the message stays
                # unacknowledged. taskiq would swallow this too, but log it as an error with a traceback.
                log.debug("generation message %s: cancelled, not acknowledged", generation_id)
            finally:
                self._done_locally()

        self.broker.register_task(run_generation, task_name=TASK_NAME, ack_type=AcknowledgeType.MANUAL.value)

    async def consume(self, stop: asyncio.Event, concurrency: int, grace: float) -> None:
        """Read the durable queue until `stop` is set, then wait up to `grace` for running jobs.

        Survives Redis going away: the reader is restarted with a growing pause, and the consumer
        group declared again (a Redis that restarted without persistence has lost it).
        The in-memory broker runs jobs as it receives them: nothing to read.
        """
        if not self.durable:
            await stop.wait()
            return
        pause = 0.5
        while not stop.is_set():
            receiver = Receiver(
                self.broker,
                max_async_tasks=concurrency,
                propagate_exceptions=False,
                run_startup=False,
                ack_type=AcknowledgeType.MANUAL,
                wait_tasks_timeout=grace,
            )
            try:
                await self._declare_group()
                await receiver.listen(stop)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_outage(exc) and not _lost_group(exc):
                    raise
                log.warning("job queue unreachable (%s); reading again in %.1fs", type(exc).__name__, pause)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
                pause = min(pause * 2, 10.0)

    async def _declare_group(self) -> None:
        if isinstance(self.broker, RedisStreamBroker):
            await self.broker._declare_consumer_group()  # taskiq-redis 1.2.4: idempotent, errors only logged

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
