"""The Redis queue gives a dead worker's unacknowledged messages to the living even when no new
prompt arrives (taskiq-redis alone looks for them only after reading a new message)."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from bot.queue import JobQueue, create_broker
from tests.conftest import make_settings


async def test_a_dead_workers_message_is_put_back_on_a_quiet_queue(redis_url: str, redis_namespace: str) -> None:
    settings = make_settings(
        "sqlite+aiosqlite://", REDIS_URL=redis_url, REDIS_NAMESPACE=redis_namespace, JOB_REDELIVERY_TIMEOUT=1
    )
    queue = JobQueue(create_broker(settings))
    await queue.start()
    redis = Redis.from_url(redis_url)
    stream, group = f"{redis_namespace}:jobs", f"{redis_namespace}:workers"
    try:
        await queue.enqueue(41)
        taken = await redis.xreadgroup(group, "a-worker-that-died", {stream: ">"}, count=1)
        [(_, [(first_id, fields)])] = taken
        assert await queue.reclaim_stale() == 0  # not idle long enough yet: it may still be working
        await asyncio.sleep(1.2)
        assert await queue.reclaim_stale() == 1
        again = await redis.xreadgroup(group, "a-living-worker", {stream: ">"}, count=1)
        [(_, [(second_id, second_fields)])] = again
        assert second_id != first_id and second_fields == fields  # the same job, as a new message
        pending = await redis.xpending(stream, group)
        assert pending["pending"] == 1 and pending["consumers"][0]["name"] == b"a-living-worker"
    finally:
        await redis.aclose()
        await queue.close()
