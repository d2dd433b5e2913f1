"""Bulk work (a crowd of prompts, the jobs they start) holds at most a few database connections at once.

SQLAlchemy's pool hands out connections first come, first served: with 500 prompts queued for one, a
`/help` that needs a single read waited seconds behind them. A task marked bulk (`bulk_work`) takes a
slot of the `BulkGate` before each session, so the rest of the pool stays free for everything else
(commands, buttons, lease renewals). Among bulk tasks the one that started first goes first, so a
crowd of prompts finishes one after another instead of all of them crawling at once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar

_tickets = itertools.count()
# Set while a task does bulk work; the value is its place in line (lower goes first).
_ticket: ContextVar[int | None] = ContextVar("bulk_ticket", default=None)
# Set while the task holds a slot, so a session opened inside another one does not wait for itself.
_holding: ContextVar[bool] = ContextVar("bulk_holding", default=False)


@contextmanager
def bulk_work() -> Iterator[None]:
    """Mark the current task's work as bulk until the block ends (a new place in line each time)."""
    token = _ticket.set(next(_tickets))
    try:
        yield
    finally:
        _ticket.reset(token)


@contextmanager
def urgent_work() -> Iterator[None]:
    """Unmark: work a bulk task spawns that must not wait behind the crowd (e.g. lease renewals)."""
    token = _ticket.set(None)
    try:
        yield
    finally:
        _ticket.reset(token)


def is_bulk() -> bool:
    return _ticket.get() is not None


class BulkGate:
    """A semaphore whose waiters are served in the order their bulk work began."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a bulk gate needs at least one slot")
        self.slots = slots
        self._free = slots
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()  # ties: first come, first served
        self.waiting = 0  # waiters not yet served nor cancelled (the heap may hold cancelled ones)

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Take a slot for the block if the current task does bulk work and holds none yet."""
        ticket = _ticket.get()
        if ticket is None or _holding.get():
            yield
            return
        await self._acquire(ticket)
        token = _holding.set(True)
        try:
            yield
        finally:
            _holding.reset(token)
            self._release()

    async def _acquire(self, ticket: int) -> None:
        if self._free > 0 and not self.waiting:
            self._free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (ticket, next(self._order), fut))
        self.waiting += 1
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release()  # granted just as we were cancelled: pass the slot on
            else:
                self.waiting -= 1  # its cancelled future stays in the heap; `_release` skips it
            raise

    def _release(self) -> None:
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                self.waiting -= 1
                fut.set_result(None)  # the slot goes straight to the next in line
                return
        self._free += 1
