"""Shutdown's one pattern: give running tasks a grace period, then cancel what is left."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)


async def drain(tasks: Iterable[asyncio.Task[Any]], grace: float, what: str, cancel_wait: float = 10.0) -> int:
    """Wait up to `grace` s for `tasks` (never the calling one), cancel the rest; returns how many were cut."""
    current = asyncio.current_task()
    pending = {t for t in tasks if t is not current and not t.done()}
    if not pending:
        return 0
    log.info("waiting up to %.0fs for %d running %s", grace, len(pending), what)
    _done, still = await asyncio.wait(pending, timeout=grace)
    for task in still:
        task.cancel()
    if still:
        await asyncio.wait(still, timeout=cancel_wait)
    return len(still)
