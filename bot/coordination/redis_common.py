"""What every Redis-backed piece shares: one key prefix per deployment, and quiet degradation.

Coordination is advisory (cool-downs, slots, send pacing): when Redis fails, the bot keeps working
without it for a few seconds before trying again, instead of making every request wait out
timeouts, and says so in the log at most once a minute per topic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)
WARN_EVERY_SECONDS = 60.0
SKIP_AFTER_FAILURE_SECONDS = 5.0


def stop_if_cancelled() -> None:
    """Raise `CancelledError` if this task was asked to stop and something swallowed the request.

    A cancellation that lands mid-command can come out of redis-py as a timeout (`asyncio.timeout`
    inside it) that its retry then repeats; a loop that polls Redis would run on, and whoever waits
    for it (`wait_for`, a slot's release) would wait forever. Seen once in CI: a hung test.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def namespaced(namespace: str, *parts: str) -> str:
    """`{namespace}:part:part`: every key the bot writes carries the deployment's prefix."""
    return ":".join((namespace, *parts))


class Degradation:
    """After a Redis failure, `skipping` is true for a few seconds; the warning is logged once a minute."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        skip_for: float = SKIP_AFTER_FAILURE_SECONDS,
        warn_every: float = WARN_EVERY_SECONDS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._what = what
        self._skip_for = skip_for
        self._warn_every = warn_every
        self._now = now
        self._failed_at: float | None = None
        self._warned_at: float | None = None

    @property
    def skipping(self) -> bool:
        return self._failed_at is not None and self._now() - self._failed_at < self._skip_for

    def failed(self, exc: BaseException) -> None:
        now = self._now()
        self._failed_at = now
        if self._warned_at is None or now - self._warned_at >= self._warn_every:
            self._warned_at = now
            self._logger.warning(
                "%s: Redis failed (%s), going on without it for %.0f s", self._what, type(exc).__name__, self._skip_for
            )
