"""Retrying a Telegram upload through a passing fault: 5xx answers and network errors, with bounded
exponential backoff (tenacity). A 4xx is Telegram's final word and is not retried; 429 is waited out
by the session's RetryAfterMiddleware inside each attempt.

Only for the image of a paid job: a network error may hide an upload that did arrive, so a retry can
show an image twice. Losing it (and the unit) is worse.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiogram.exceptions import TelegramNetworkError, TelegramServerError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

PASSING_FAULTS = (TelegramServerError, TelegramNetworkError)
ATTEMPTS = 3  # per way of sending (as a photo, then as a document)
WINDOW = 20.0  # seconds after which no new attempt starts
FIRST_WAIT, MAX_WAIT = 0.5, 4.0


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning(
        "Telegram upload failed (%s), attempt %d; retrying in %.1fs", type(error).__name__, state.attempt_number, wait
    )


async def with_retries(send: Callable[[], Awaitable[T]]) -> T:
    """`send()` until it succeeds, fails for good (4xx, 403), or the attempts run out (the last error is raised)."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(ATTEMPTS) | stop_after_delay(WINDOW),
        wait=wait_exponential_jitter(initial=FIRST_WAIT, max=MAX_WAIT, jitter=FIRST_WAIT),
        retry=retry_if_exception_type(PASSING_FAULTS),
        before_sleep=_log_retry,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await send()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
