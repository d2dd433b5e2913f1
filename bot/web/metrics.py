"""Prometheus metrics for front ends and workers, each `Metrics` owning its own registry.

A private registry (not prometheus_client's global one) lets tests and several apps in one process
each count on their own. Gauges that describe shared state (queue depth, provider cool-downs) are
filled at scrape time by registered refreshers, so they are fresh without a background loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)

Refresher = Callable[[], Awaitable[None]]

# Provider calls take from under a second (Gemini) to minutes (FLUX Pro waits, retries, fallbacks).
GENERATION_BUCKETS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300)
# Queue wait: near zero when idle, minutes when providers are saturated or a redelivery waited.
QUEUE_WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
NO_PROVIDER = "none"


class Metrics:
    """Every metric the bot exposes, with plain methods so callers never touch label plumbing."""

    def __init__(self, *, refresh_timeout: float = 1.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.refresh_timeout = refresh_timeout
        self._refreshers: list[Refresher] = []
        r = self.registry
        self.generations = Counter(
            "imagebot_generations", "Finished generations", ["model", "provider", "status"], registry=r
        )
        self.generation_seconds = Histogram(
            "imagebot_generation_seconds",
            "Time from worker start to a finished generation",
            ["model"],
            buckets=GENERATION_BUCKETS,
            registry=r,
        )
        self.fallbacks = Counter(
            "imagebot_fallbacks",
            "Generations served by another model than requested",
            ["requested", "used"],
            registry=r,
        )
        self.queue_wait_seconds = Histogram(
            "imagebot_queue_wait_seconds",
            "Time from enqueue to a worker starting the job",
            buckets=QUEUE_WAIT_BUCKETS,
            registry=r,
        )
        self.jobs_in_flight = Gauge("imagebot_jobs_in_flight", "Jobs this process is running now", registry=r)
        self.queue_depth = Gauge("imagebot_queue_depth", "Jobs waiting in the queue (at scrape time)", registry=r)
        self.provider_cooldown = Gauge(
            "imagebot_provider_cooldown", "Seconds a chain step still rests (0 = available)", ["step"], registry=r
        )
        self.job_redeliveries = Counter(
            "imagebot_job_redeliveries", "Jobs taken again after a worker died or stalled", registry=r
        )
        self.updates = Counter("imagebot_updates", "Telegram updates received", ["type"], registry=r)

    # --- called by workers ---

    def job_started(self, wait_seconds: float) -> None:
        """Record how long a job queued; clocks of two hosts may disagree, so never below zero."""
        self.queue_wait_seconds.observe(max(0.0, wait_seconds))

    def job_finished(
        self, model: str, provider: str | None, status: str, seconds: float, fallback_used: str | None
    ) -> None:
        """One finished job: `provider` None when none answered, `fallback_used` the model that did instead."""
        self.generations.labels(model=model, provider=provider or NO_PROVIDER, status=status).inc()
        self.generation_seconds.labels(model=model).observe(max(0.0, seconds))
        if fallback_used is not None and fallback_used != model:
            self.fallbacks.labels(requested=model, used=fallback_used).inc()

    @contextmanager
    def in_flight(self) -> Iterator[None]:
        """Count a running job; the gauge goes back down however the job ends."""
        self.jobs_in_flight.inc()
        try:
            yield
        finally:
            self.jobs_in_flight.dec()

    def redelivered(self) -> None:
        self.job_redeliveries.inc()

    def update_received(self, update_type: str) -> None:
        self.updates.labels(type=update_type).inc()

    # --- filled by refreshers at scrape time ---

    def set_queue_depth(self, depth: int) -> None:
        self.queue_depth.set(depth)

    def set_cooldowns(self, seconds_by_step: Mapping[str, float]) -> None:
        """Replace every step's value, so a step that left the chain stops being reported."""
        self.provider_cooldown.clear()
        for step, seconds in seconds_by_step.items():
            self.provider_cooldown.labels(step=step).set(max(0.0, seconds))

    def add_refresher(self, refresher: Refresher) -> None:
        """Register an async callable run before each scrape (it calls the setters above)."""
        self._refreshers.append(refresher)

    async def refresh(self) -> None:
        """Run every refresher at once, each bounded; a failure is logged and leaves its old values."""
        if self._refreshers:
            await asyncio.gather(*(self._run_refresher(fn) for fn in self._refreshers))

    async def _run_refresher(self, refresher: Refresher) -> None:
        try:
            await asyncio.wait_for(refresher(), self.refresh_timeout)
        except Exception as exc:
            # Class only: a message may carry a broker or database URL with its password.
            name = getattr(refresher, "__qualname__", type(refresher).__name__)
            log.warning("Metrics refresher %s failed: %s", name, type(exc).__name__)

    async def render(self) -> bytes:
        """The exposition text for a scrape."""
        await self.refresh()
        return generate_latest(self.registry)
