"""Per-step concurrency caps: a provider that serves four calls at once should not get forty.

Keys are chain steps (ModelId values: gemini-flash, flux-dev, flux-pro, pollinations); a key with no
limit, or a limit of 0, is unlimited. `MemoryConcurrency` caps one process; `RedisConcurrency`
(bot.coordination.redis_concurrency) caps every worker sharing a Redis namespace.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol


class ConcurrencyLimiter(Protocol):
    def slot(self, key: str) -> AbstractAsyncContextManager[None]:
        """Wait for a free slot of `key`, hold it inside the block, give it back on exit."""
        ...


def active_limits(limits: Mapping[str, int]) -> dict[str, int]:
    """Only the keys that are really limited (absent or 0 means no limit)."""
    return {key: limit for key, limit in limits.items() if limit > 0}


class MemoryConcurrency:
    """One asyncio.Semaphore per limited key: enough when one process runs every generation."""

    def __init__(self, limits: Mapping[str, int]) -> None:
        self._semaphores = {key: asyncio.Semaphore(limit) for key, limit in active_limits(limits).items()}

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        semaphore = self._semaphores.get(key)
        if semaphore is None:
            yield
            return
        async with semaphore:
            yield
