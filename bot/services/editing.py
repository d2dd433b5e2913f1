"""Edits and upscales: a photo and an instruction in, a typed outcome out, like a prompt's chain.

Edit: each configured editor in order (Gemini's image model, then FLUX.1 Kontext) until one answers;
an outage moves on, a content-filter refusal ends it (unless REFUSAL_FALLBACK=1), and the operator's
word list is checked on the instruction before anything is called. Upscale: the one upscaler.
Knows no Telegram: the photo arrives as bytes (bot/photo_jobs.py fetches it).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass

from bot.catalog import ModelId
from bot.coordination.concurrency import ConcurrencyLimiter
from bot.providers.base import ErrorKind, ProviderImage
from bot.providers.editing import ImageEditor, ImageUpscaler
from bot.safety import WORD_LIST, SafetyPolicy
from bot.services.attempts import run_step
from bot.services.generation import (
    COOLING_DOWN,
    MAX_PROMPT_CHARS,
    Attempt,
    FailureReason,
    GeneratedImage,
    GenerationFailed,
    GenerationOutcome,
    GenerationResult,
)
from bot.services.health import ProviderHealth
from bot.timing import elapsed_ms

log = logging.getLogger(__name__)

UPSCALE_FACTOR = 2


@dataclass(frozen=True, slots=True)
class EditStep:
    """An editor and the product model its result is shown under (Kontext is a FLUX model)."""

    model: ModelId
    editor: ImageEditor


class EditingService:
    def __init__(
        self,
        steps: Sequence[EditStep] = (),
        upscaler: ImageUpscaler | None = None,
        policy: SafetyPolicy | None = None,
        health: ProviderHealth | None = None,
        limiter: ConcurrencyLimiter | None = None,
    ) -> None:
        self._steps = list(steps)
        self._upscaler = upscaler
        self._policy = policy or SafetyPolicy()
        self._health = health  # the same cool-downs as prompts: a failing editor rests, then is tried last
        self._limiter = limiter  # PROVIDER_CONCURRENCY of the step an editor stands for

    def can_edit(self) -> bool:
        return any(step.editor.can_edit() for step in self._steps)

    def can_upscale(self) -> bool:
        return self._upscaler is not None and self._upscaler.can_upscale()

    async def edit(self, image: bytes, mime_type: str, instruction: str, requested: ModelId) -> GenerationOutcome:
        started = time.monotonic()
        instruction = instruction.strip()
        if not instruction or len(instruction) > MAX_PROMPT_CHARS:
            return GenerationFailed(requested, FailureReason.INVALID_REQUEST, [], detail="instruction length")
        term = self._policy.blocked_terms.match(instruction)
        if term is not None:
            log.info("edit instruction refused by the word list (term %r)", term)
            attempt = Attempt(WORD_LIST, "", ErrorKind.REFUSED.value, detail=f"blocked term {term}"[:300])
            return GenerationFailed(requested, FailureReason.REFUSED, [attempt], elapsed_ms(started))
        attempts: list[Attempt] = []
        resting: list[EditStep] = []
        for step in self._steps:
            if not step.editor.can_edit():
                attempts.append(Attempt(step.editor.name, step.model.value, ErrorKind.NOT_CONFIGURED.value))
                continue
            if self._health is not None and await self._health.cooling_down(_key(step.editor.name, step.model)):
                attempts.append(Attempt(step.editor.name, step.model.value, COOLING_DOWN))
                resting.append(step)
                continue
            found, final = await self._edit_step(step, image, mime_type, instruction, attempts)
            if found is not None:
                return GenerationResult(requested, [found], attempts, elapsed_ms(started))
            if final:
                return self._failed(requested, attempts, started)
        for step in resting:  # every other editor failed: a resting one is better than none
            found, final = await self._edit_step(step, image, mime_type, instruction, attempts)
            if found is not None:
                return GenerationResult(requested, [found], attempts, elapsed_ms(started))
            if final:
                break
        return self._failed(requested, attempts, started)

    async def _edit_step(
        self, step: EditStep, image: bytes, mime_type: str, instruction: str, attempts: list[Attempt]
    ) -> tuple[GeneratedImage | None, bool]:
        """The image, or None and whether that was a refusal that ends the chain."""
        call = functools.partial(step.editor.edit, image, mime_type, instruction)
        async with self._slot(step.model):
            found = await self._attempt(step.model, step.editor.name, call, attempts)
        refused = found is None and attempts[-1].outcome == ErrorKind.REFUSED
        return found, refused and not self._policy.refusal_fallback

    async def upscale(self, image: bytes, mime_type: str, requested: ModelId) -> GenerationOutcome:
        started = time.monotonic()
        attempts: list[Attempt] = []
        upscaler = self._upscaler
        if upscaler is None or not upscaler.can_upscale():
            return GenerationFailed(requested, FailureReason.NO_PROVIDER, attempts)
        call = functools.partial(upscaler.upscale, image, mime_type, UPSCALE_FACTOR)
        found = await self._attempt(requested, upscaler.name, call, attempts, key=f"{upscaler.name}/upscale")
        if found is not None:
            return GenerationResult(requested, [found], attempts, elapsed_ms(started))
        return self._failed(requested, attempts, started)

    async def _attempt(
        self,
        step: ModelId,
        name: str,
        call: Callable[[], Awaitable[ProviderImage]],
        attempts: list[Attempt],
        *,
        key: str | None = None,
    ) -> GeneratedImage | None:
        key = key or _key(name, step)
        outcome = await run_step(call, provider=name, model=step.value, key=key, health=self._health, attempts=attempts)
        if not isinstance(outcome, ProviderImage):
            return None
        return GeneratedImage(outcome.data, outcome.mime_type, step, outcome.provider, outcome.model)

    def _slot(self, step: ModelId) -> AbstractAsyncContextManager[None]:
        return nullcontext() if self._limiter is None else self._limiter.slot(step.value)

    @staticmethod
    def _failed(requested: ModelId, attempts: list[Attempt], started: float) -> GenerationFailed:
        if any(a.outcome == ErrorKind.REFUSED for a in attempts):
            return GenerationFailed(requested, FailureReason.REFUSED, attempts, elapsed_ms(started))
        tried = [a for a in attempts if a.outcome not in (ErrorKind.NOT_CONFIGURED, COOLING_DOWN)]
        reason = FailureReason.ALL_FAILED if tried else FailureReason.NO_PROVIDER
        return GenerationFailed(requested, reason, attempts, elapsed_ms(started))

    async def aclose(self) -> None:
        closing: list[ImageEditor | ImageUpscaler] = [step.editor for step in self._steps]
        if self._upscaler is not None:
            closing.append(self._upscaler)
        for tool in closing:
            try:
                await tool.aclose()
            except Exception as exc:
                log.warning("closing %s failed: %s", tool.name, type(exc).__name__)


def _key(name: str, step: ModelId) -> str:
    """Cool-down key of an editor: its provider name and the step it stands for."""
    return f"{name}/{step.value}"
