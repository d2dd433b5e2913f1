"""Test doubles for the provider interface, for tests of the chain and handlers (not of providers)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from PIL import Image

from bot.catalog import ModelId
from bot.providers.base import ErrorKind, ImageOptions, ProviderError, ProviderImage
from bot.services.generation import GenerationResult, GenerationService
from bot.services.jobs import GenerationJobs, JobView, SubmitStatus, Submitted
from models import GenerationStatus


def png(color: tuple[int, int, int] = (10, 200, 30), size: tuple[int, int] = (32, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


class StubProvider:
    """Serves its models from a script: each call pops the next outcome ("ok", an ErrorKind, or an exception)."""

    def __init__(
        self,
        name: str,
        models: Iterable[ModelId],
        *,
        configured: bool = True,
        outcomes: list[object] | None = None,
        delay: float = 0.0,
        color: tuple[int, int, int] = (10, 200, 30),
    ) -> None:
        self.name = name
        self.models = frozenset(models)
        self._configured = configured
        self.outcomes = list(outcomes or [])
        self.delay = delay
        self.color = color
        self.calls: list[tuple[ModelId, str, ImageOptions]] = []

    def available(self, model: ModelId) -> bool:
        return self._configured and model in self.models

    async def generate(self, model: ModelId, prompt: str, options: ImageOptions) -> ProviderImage:
        self.calls.append((model, prompt, options))
        if self.delay:
            await asyncio.sleep(self.delay)
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if isinstance(outcome, ErrorKind):
            raise ProviderError(outcome, self.name, model.value, status=503, detail="stub failure", latency_ms=1)
        if isinstance(outcome, BaseException):
            raise outcome
        return ProviderImage(png(self.color), self.name, f"stub/{model.value}", seed=options.seed)

    async def aclose(self) -> None:
        return None


def default_stubs() -> dict[str, StubProvider]:
    return {
        "gemini": StubProvider("gemini", [ModelId.GEMINI_FLASH], color=(200, 30, 30)),
        "hf": StubProvider("hf-replicate", [ModelId.FLUX_DEV, ModelId.FLUX_PRO], color=(30, 30, 200)),
        "pollinations": StubProvider("pollinations", [ModelId.POLLINATIONS], color=(30, 200, 30)),
    }


async def run_job(
    jobs: GenerationJobs, generation: GenerationService, owner: str = "w1", **submit: Any
) -> tuple[Submitted, GenerationStatus | None]:
    """A worker's path without Telegram: submit, claim, generate, finish (delivered or failed)."""
    submitted = await jobs.submit(**submit)
    if submitted.status is not SubmitStatus.QUEUED:
        return submitted, None
    job = await jobs.claim(owner, timedelta(seconds=60), preferred=submitted.generation_id)
    assert isinstance(job, JobView), job
    outcome = await generation.generate(job.request)
    if isinstance(outcome, GenerationResult):
        settled, _ = await jobs.settle_sent(job.id, owner, 1000 + job.id, outcome, delivered=len(outcome.images))
    else:
        settled = await jobs.finish(job.id, owner, GenerationStatus.FAILED, outcome)
    assert settled is not None
    return submitted, settled.status
