"""Blocking calls in daemon threads, a bounded number at once.

huggingface_hub's client is synchronous, so FLUX Dev runs in a thread. A ThreadPoolExecutor's
threads are joined when the interpreter exits: one call stuck in a socket read kept the process
alive long after SIGTERM and SHUTDOWN_GRACE. Daemon threads are not waited for; every request they
make has a deadline anyway (`hub_http`), so they cannot pile up either.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class DaemonThreads:
    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._slots: asyncio.Semaphore | None = None
        self.running = 0  # threads alive now, for tests and metrics

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a daemon thread; cancelling the caller does not stop the thread, only the wait."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._size)
        slots = self._slots
        await slots.acquire()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(outcome: Callable[[], None]) -> None:
            self.running -= 1
            slots.release()
            if not future.done():
                outcome()

        def target() -> None:
            done: Callable[[], None]
            try:
                done = functools.partial(future.set_result, fn(*args))
            except BaseException as exc:
                done = functools.partial(future.set_exception, exc)
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
                loop.call_soon_threadsafe(settle, done)

        self.running += 1
        try:
            threading.Thread(target=target, name=self._name, daemon=True).start()
        except BaseException:
            self.running -= 1
            slots.release()
            raise
        return await future
