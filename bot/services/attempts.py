"""One step of a provider chain, recorded: the generation chain and the edit chain run steps alike.

Providers raise ProviderError and log nothing; the step is where a failure is logged, once, and
where the cool-down tracker hears of it. A ProviderError carries no key, so its log line cannot leak one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from bot.providers.base import ErrorKind, ProviderError, ProviderImage
from bot.services.health import ProviderHealth
from bot.timing import elapsed_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One step of the chain, as logged and stored with the generation."""

    provider: str
    model: str
    outcome: str  # "ok" or an ErrorKind value
    status: int | None = None
    detail: str = ""
    latency_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def run_step(
    call: Callable[[], Awaitable[ProviderImage]],
    *,
    provider: str,
    model: str,
    key: str,
    health: ProviderHealth | None,
    attempts: list[Attempt],
) -> ProviderImage | ProviderError | None:
    """Run one provider call and record it in `attempts` and `health`. The image; or its ProviderError
    (a refusal too: the chain decides whether it ends there); or None when the provider crashed."""
    started = time.monotonic()
    try:
        image = await call()
    except ProviderError as exc:
        attempts.append(failed_attempt(exc, started))
        if health is not None:  # a refusal is an answer, not an outage: no rest for it
            if exc.kind is ErrorKind.REFUSED:
                await health.succeeded(key)
            else:
                await health.failed(key, exc.kind)
        return exc
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a provider bug must not stop the chain
        latency = elapsed_ms(started)
        log.error(
            "provider crashed: provider=%s model=%s error=%s latency_ms=%d",
            provider, model, type(exc).__name__, latency,
        )  # fmt: skip
        attempts.append(Attempt(provider, model, ErrorKind.UNAVAILABLE.value, None, type(exc).__name__, latency))
        if health is not None:
            await health.failed(key, ErrorKind.UNAVAILABLE)
        return None
    if health is not None:
        await health.succeeded(key)
    attempts.append(Attempt(image.provider, image.model, "ok", None, "", elapsed_ms(started)))
    return image


def failed_attempt(exc: ProviderError, started: float) -> Attempt:
    """A chain's record of a provider failure, and its one log line."""
    latency = exc.latency_ms if exc.latency_ms is not None else elapsed_ms(started)
    if exc.kind is ErrorKind.REFUSED:  # an answer, not a fault
        log.info("provider refused: provider=%s model=%s reason=%r", exc.provider, exc.model, exc.detail[:200])
    else:
        log.warning(
            "provider failed: provider=%s model=%s kind=%s status=%s latency_ms=%d body=%r",
            exc.provider, exc.model, exc.kind.value, exc.status, latency, exc.detail[:200],
        )  # fmt: skip
    return Attempt(exc.provider, exc.model, exc.kind.value, exc.status, exc.detail[:300], latency)
