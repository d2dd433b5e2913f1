"""The job queue, on taskiq: in memory when embedded (jobs run in this process), a Redis stream
with a consumer group when `REDIS_URL` is set (a message is acknowledged only when its job is
settled; one a dead worker held is claimed again after `JOB_REDELIVERY_TIMEOUT`).

A message carries only a generation id: the database row is the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, cast

from taskiq import AsyncBroker, Context, InMemoryBroker, TaskiqDepends
from taskiq.acks import AcknowledgeType
from taskiq.kicker import AsyncKicker
from taskiq.receiver import Receiver

from bot.config import Settings
from bot.faults import is_outage

if TYPE_CHECKING:  # imported when REDIS_URL is set: the default set-up never loads redis (about 6 MiB)
    from taskiq_redis import RedisStreamBroker

log = logging.getLogger(__name__)

TASK_NAME = "imagebot.generation"

# Runs one job; True means settled (acknowledge the message), False means leave it for redelivery.
JobHandler = Callable[[int], Awaitable[bool]]


def create_broker(settings: Settings) -> AsyncBroker:
    if settings.redis_url is None:
        return InMemoryBroker(max_stored_results=1, propagate_exceptions=False)
    from taskiq_redis import RedisStreamBroker

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
    errors = sys.modules.get("redis.exceptions")  # not loaded: no Redis error can exist
    return errors is not None and isinstance(exc, errors.ResponseError) and "NOGROUP" in str(exc)


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
        reclaiming = asyncio.create_task(self._reclaim_forever(stop), name="reclaim-stale-messages")
        try:
            await self._read(stop, concurrency, grace)
        finally:
            reclaiming.cancel()
            await asyncio.gather(reclaiming, return_exceptions=True)

    async def _read(self, stop: asyncio.Event, concurrency: int, grace: float) -> None:
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

    async def _reclaim_forever(self, stop: asyncio.Event) -> None:
        """Messages a dead or stopping worker held unacknowledged go back on the stream as new ones.

        taskiq-redis 1.2.4 looks for such messages (XAUTOCLAIM) only right after it has read a new
        one, so on a quiet queue a dead worker's messages would wait for the next prompt. A message
        taken twice is harmless: its second claim finds the job done or held and is acknowledged.
        """
        broker = self._redis_broker()
        every = max(broker.idle_timeout / 2000, 0.5)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set():
                return
            try:
                moved = await self.reclaim_stale()
            except Exception as exc:
                if not is_outage(exc) and not _lost_group(exc):
                    raise
                continue  # the reader reports the outage; try again next round
            if moved:
                log.info("%d unacknowledged message(s) of a stopped worker put back on the queue", moved)

    async def reclaim_stale(self) -> int:
        """One round of `_reclaim_forever`; returns how many messages were put back."""
        from redis.asyncio import Redis

        broker = self._redis_broker()
        stream, group = broker.queue_name, broker.consumer_group_name
        moved = 0
        async with Redis(connection_pool=broker.connection_pool) as redis:
            _next, entries, *_ = await redis.xautoclaim(
                stream, group, f"{broker.consumer_name}:reclaimer", min_idle_time=broker.idle_timeout, count=100
            )
            for message_id, fields in entries:
                if fields:  # an entry trimmed from the stream comes back empty: the sweep covers its job
                    await redis.xadd(stream, fields, maxlen=broker.maxlen, approximate=True)
                    moved += 1
                await redis.xack(stream, group, message_id)
        return moved

    async def _declare_group(self) -> None:
        if self.durable:
            await self._redis_broker()._declare_consumer_group()  # taskiq-redis 1.2.4: idempotent, errors only logged

    async def ping(self) -> None:
        """Raises when the broker cannot be reached (for /healthz)."""
        if self.durable:
            from redis.asyncio import Redis

            async with Redis(connection_pool=self._redis_broker().connection_pool) as redis:
                await redis.ping()

    def _redis_broker(self) -> RedisStreamBroker:
        assert self.durable, "only the Redis queue has a stream"
        return cast("RedisStreamBroker", self.broker)

    async def close(self) -> None:
        if self._started:
            self._started = False
            await self.broker.shutdown()
