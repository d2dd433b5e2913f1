"""Broadcasts run as a background task, paced under Telegram's limits, so the bot keeps answering."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError, TelegramRetryAfter

from bot.coordination.leases import Leases
from bot.services.audience import AudienceService

log = logging.getLogger(__name__)

SendTo = Callable[[int], Awaitable[object]]
Report = Callable[["BroadcastResult"], Awaitable[object]]


@dataclass(slots=True)
class BroadcastResult:
    total: int = 0
    delivered: int = 0
    failed: int = 0
    blocked: int = 0


LEASE = "broadcast"
LEASE_TTL = timedelta(minutes=2)
RENEW_EVERY = 30.0


class Broadcaster:
    """One broadcast at a time across every instance: the running one holds a database lease."""

    def __init__(
        self,
        audience: AudienceService,
        rate: float,
        max_retry_wait: float = 300.0,
        *,
        leases: Leases | None = None,
        owner: str = "local",
    ) -> None:
        self._audience = audience
        self._leases = leases
        self._owner = owner
        self._interval = 1.0 / rate
        self._max_retry_wait = max_retry_wait
        self._task: asyncio.Task[BroadcastResult] | None = None
        self._starting = asyncio.Lock()  # two /broadcast at once: the second must see the first

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self, send: SendTo, report: Report) -> int | None:
        """Start sending to every active user; returns how many, or None if a broadcast is already running."""
        async with self._starting:
            if self.running:
                return None
            if self._leases is not None and not await self._leases.acquire(LEASE, self._owner, LEASE_TTL):
                return None  # another instance is broadcasting
            recipients = await self._audience.active_ids()
            self._task = asyncio.create_task(self._run(recipients, send, report), name="broadcast")
            return len(recipients)

    async def wait(self) -> BroadcastResult | None:
        return await self._task if self._task is not None else None

    async def stop(self) -> None:
        if self.running and self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, recipients: list[int], send: SendTo, report: Report) -> BroadcastResult:
        result = BroadcastResult(total=len(recipients))
        renewed = time.monotonic()
        try:
            for user_id in recipients:
                await self._send_one(user_id, send, result)
                await asyncio.sleep(self._interval)
                if self._leases is not None and time.monotonic() - renewed > RENEW_EVERY:
                    await self._leases.acquire(LEASE, self._owner, LEASE_TTL)
                    renewed = time.monotonic()
        finally:
            if self._leases is not None:
                await self._leases.release(LEASE, self._owner)
            log.info(
                "broadcast done: %d delivered, %d failed (%d blocked the bot) of %d",
                result.delivered, result.failed, result.blocked, result.total,
            )  # fmt: skip
            try:
                await report(result)
            except TelegramAPIError as exc:
                log.warning("broadcast report not sent: %s", type(exc).__name__)
        return result

    async def _send_one(self, user_id: int, send: SendTo, result: BroadcastResult) -> None:
        for _attempt in range(5):
            try:
                await send(user_id)
                result.delivered += 1
                return
            except TelegramRetryAfter as exc:  # the session already retried; the whole run waits
                if exc.retry_after > self._max_retry_wait:
                    break
                await asyncio.sleep(exc.retry_after)
            except TelegramForbiddenError:
                result.failed += 1
                result.blocked += 1
                await self._audience.set_blocked(user_id, True)
                return
            except TelegramAPIError as exc:
                log.info("broadcast to %s failed: %s", user_id, type(exc).__name__)
                break
        result.failed += 1
