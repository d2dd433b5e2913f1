"""A burst of updates does not exhaust Redis connections: the pools wait for a free one instead of
failing (redis-py 8's default pool raises once 100 are in use)."""

from __future__ import annotations

import asyncio

from aiogram.fsm.storage.base import StorageKey

from bot.app import create_storage
from bot.clock import ManualClock
from bot.coordination.factory import build_coordination
from tests.conftest import make_settings


async def test_three_hundred_fsm_lookups_at_once_all_answer(redis_url: str, redis_namespace: str) -> None:
    settings = make_settings("sqlite+aiosqlite://", REDIS_URL=redis_url, REDIS_NAMESPACE=redis_namespace)
    storage = create_storage(settings)
    try:
        keys = [StorageKey(bot_id=1, chat_id=i, user_id=i) for i in range(300)]
        await asyncio.gather(*(storage.set_state(k, "waiting") for k in keys))
        states = await asyncio.gather(*(storage.get_state(k) for k in keys))
        assert states == ["waiting"] * 300
    finally:
        await storage.close()


async def test_coordination_client_waits_for_a_connection_too(
    redis_url: str, redis_namespace: str, clock: ManualClock
) -> None:
    settings = make_settings("sqlite+aiosqlite://", REDIS_URL=redis_url, REDIS_NAMESPACE=redis_namespace)
    coordination = await build_coordination(settings, clock)
    try:
        assert coordination.redis is not None
        answers = await asyncio.gather(*(coordination.redis.ping() for _ in range(300)))
        assert all(answers)
    finally:
        await coordination.aclose()
