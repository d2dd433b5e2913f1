"""The real Redis on 127.0.0.1:6379, one uuid namespace per test, its keys deleted afterwards.

Without a Redis server these tests skip locally and fail under CI (env CI set), so a CI that lost
its Redis cannot pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.coordination.redis_common import REDIS_ERRORS

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

RedisFactory = Callable[[], Awaitable[Redis]]


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
async def redis_factory(namespace: str) -> AsyncIterator[RedisFactory]:
    """New clients on the test server (one per simulated process); the namespace is wiped at the end."""
    clients: list[Redis] = []

    async def make() -> Redis:
        client = Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=1, retry=Retry(NoBackoff(), 1))
        clients.append(client)
        try:
            await client.ping()
        except REDIS_ERRORS as exc:
            reason = f"Redis does not answer at {REDIS_URL} ({type(exc).__name__})"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        return client

    yield make
    if clients:
        try:
            cleaner = clients[0]
            keys = [key async for key in cleaner.scan_iter(match=f"{namespace}:*")]
            if keys:
                await cleaner.delete(*keys)
        except REDIS_ERRORS:
            pass  # nothing was written if the server never answered
        for client in clients:
            await client.aclose()


@pytest.fixture
async def redis(redis_factory: RedisFactory) -> Redis:
    return await redis_factory()
