"""The one generation service every front end calls: level check, word list, fallback chain, typed outcome.

The chain is for outages, not for shopping for a laxer filter: a provider's refusal (ErrorKind.REFUSED)
ends it, unless the operator set REFUSAL_FALLBACK=1 (bot/safety.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.catalog import MODELS, ModelId, chain_for
from bot.coordination.concurrency import ConcurrencyLimiter
from bot.levels import Level
from bot.providers.base import (
    ErrorKind,
    ImageOptions,
    ImageProvider,
    Option,
    ProviderError,
    ProviderImage,
    accepted_options,
    parse_ratio,
    provider_for,
)
from bot.safety import WORD_LIST, SafetyPolicy
from bot.services.attempts import Attempt as Attempt  # re-exported: callers name it from here
from bot.services.attempts import run_step
from bot.services.health import ProviderHealth
from bot.styles import SEED_MAX, styled_prompt
from bot.timing import elapsed_ms

if TYPE_CHECKING:
    from bot.services.editing import EditingService

log = logging.getLogger(__name__)

COOLING_DOWN = "cooling_down"  # attempt outcome: skipped while the step rests after failures
MAX_PROMPT_CHARS = 4000
MAX_COUNT = 4
MIN_SIDE, MAX_SIDE = 64, 2048


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    prompt: str
    model: ModelId
    level: Level
    options: ImageOptions = field(default_factory=ImageOptions)


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    data: bytes
    mime_type: str
    step: ModelId  # which product model of the chain made it
    provider: str
    model: str  # the concrete upstream model (e.g. black-forest-labs/FLUX.1-schnell)
    prompt_shortened: bool = False  # the provider got a cut prompt: the caption says so
    seed: int | None = None  # the seed the provider used (None: the model takes none)
    width: int = 0
    height: int = 0
    ignored: frozenset[Option] = frozenset()  # options the user set that this model does not take


@dataclass(frozen=True, slots=True)
class GenerationResult:
    requested: ModelId
    images: list[GeneratedImage]
    attempts: list[Attempt]
    latency_ms: int

    @property
    def first(self) -> GeneratedImage:
        return self.images[0]

    @property
    def fallback_used(self) -> bool:
        return any(img.step != self.requested for img in self.images)


class FailureReason(StrEnum):
    FORBIDDEN_MODEL = "forbidden_model"  # the level does not hold the requested model
    INVALID_REQUEST = "invalid_request"  # empty prompt, absurd size...
    NO_PROVIDER = "no_provider"  # nothing configured for any allowed step
    ALL_FAILED = "all_failed"
    REFUSED = "refused"  # a provider's content filter, or the operator's word list, declined the prompt


@dataclass(frozen=True, slots=True)
class GenerationFailed:
    requested: ModelId
    reason: FailureReason
    attempts: list[Attempt]
    latency_ms: int = 0
    detail: str = ""

    @property
    def refusal(self) -> Attempt | None:
        """The refusal behind a REFUSED outcome (the last one, if REFUSAL_FALLBACK let the chain go on)."""
        refused = [a for a in self.attempts if a.outcome == ErrorKind.REFUSED]
        return refused[-1] if refused else None

    @property
    def error_class(self) -> str:
        """The last real failure kind, or the reason when nothing was tried."""
        if self.reason is FailureReason.REFUSED:
            return ErrorKind.REFUSED.value
        real = [a.outcome for a in self.attempts if a.outcome not in ("ok", ErrorKind.NOT_CONFIGURED, COOLING_DOWN)]
        return real[-1] if real else self.reason.value


GenerationOutcome = GenerationResult | GenerationFailed


class _Refused(Exception):
    """Raised inside the chain to stop it at a refusal."""


class GenerationService:
    def __init__(
        self,
        providers: Sequence[ImageProvider],
        health: ProviderHealth | None = None,
        limiter: ConcurrencyLimiter | None = None,
        policy: SafetyPolicy | None = None,
        rng: random.Random | None = None,
        editing: EditingService | None = None,
    ) -> None:
        self._providers = list(providers)
        self._health = health
        self._limiter = limiter  # caps calls per chain step across every worker sharing it
        self._policy = policy or SafetyPolicy()
        self._rng = rng or random.Random()  # seeds the user did not fix: picked here, so they can be reported
        self.editing = editing  # edits and upscales of a photo (bot/services/editing.py)

    def can_upscale(self) -> bool:
        """Whether an upscaler is configured: the ⬆️ button is shown only then."""
        return self.editing is not None and self.editing.can_upscale()

    def can_edit(self) -> bool:
        return self.editing is not None and self.editing.can_edit()

    async def cooldowns(self) -> dict[str, float]:
        """Seconds each configured step still rests, by step name."""
        resting: dict[str, float] = {}
        if self._health is None:
            return resting
        for step in MODELS:
            provider = self.provider_for(step)
            if provider is not None and provider.available(step):
                resting[step.value] = await self._health.resting_for(_key(provider, step))
        return resting

    def provider_for(self, model: ModelId) -> ImageProvider | None:
        return provider_for(self._providers, model)

    def is_available(self, model: ModelId) -> bool:
        provider = self.provider_for(model)
        return provider is not None and provider.available(model)

    async def generate_checked(self, request: GenerationRequest) -> GenerationOutcome:
        """`generate` for a request that did not come through a job row (the CLI): checked here first."""
        refused = check_request(request)
        return refused if refused is not None else await self.generate(request)

    async def generate(self, request: GenerationRequest) -> GenerationOutcome:
        """Run a request that passed `check_request`. Workers call this for job rows, which
        `GenerationJobs.submit` checked before it wrote them: the row keeps the prompt, options and
        level it was checked with, so checking again here would repeat the same test on the same
        values (and a level lost while the job waited does not take back a reserved, paid-for unit)."""
        started = time.monotonic()
        term = self._policy.blocked_terms.match(request.prompt)
        if term is not None:  # before any provider is called
            log.info("prompt refused by the word list (term %r)", term)
            attempt = Attempt(WORD_LIST, "", ErrorKind.REFUSED.value, detail=f"blocked term {term}"[:300])
            return GenerationFailed(request.model, FailureReason.REFUSED, [attempt], elapsed_ms(started))

        chain = chain_for(request.model, request.level)
        attempts: list[Attempt] = []
        asked = _asked(request.options)
        prompt = styled_prompt(request.prompt, request.options.style)
        base_seed = request.options.seed
        if base_seed is None:  # a seed of our own, so the caption can tell it and a re-run can reproduce it
            base_seed = self._rng.randint(0, SEED_MAX)
        # All images at once (each through the whole chain, each waiting for a slot of the limiter):
        # n images take about as long as one. The order of the result is the order of the seeds.
        tasks = [
            asyncio.ensure_future(
                self._one(chain, prompt, _nth_options(request.options, base_seed, index), attempts, asked)
            )
            for index in range(request.options.count)
        ]
        try:
            found = await asyncio.gather(*tasks)
        except BaseException:  # a crash or a cancel: no image of this request may run on unobserved
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        images = [image for image in found if image is not None]
        elapsed = elapsed_ms(started)
        if images:
            return GenerationResult(request.model, images, attempts, elapsed)
        if any(a.outcome == ErrorKind.REFUSED for a in attempts):
            # Also with REFUSAL_FALLBACK=1 when nothing after the refusal made an image: the user hears
            # that the content was refused, not that the services are down.
            return GenerationFailed(request.model, FailureReason.REFUSED, attempts, elapsed)
        tried = [a for a in attempts if a.outcome not in (ErrorKind.NOT_CONFIGURED, COOLING_DOWN)]
        reason = FailureReason.ALL_FAILED if tried else FailureReason.NO_PROVIDER
        return GenerationFailed(request.model, reason, attempts, elapsed)

    async def _one(
        self,
        chain: list[ModelId],
        prompt: str,
        options: ImageOptions,
        attempts: list[Attempt],
        asked: frozenset[Option],
    ) -> GeneratedImage | None:
        """One image of a request; None when the chain made none (a refusal ends only this image's chain:
        the images made meanwhile are still delivered)."""
        try:
            found = await self._run_chain(chain, prompt, options, attempts)
        except _Refused:
            return None
        if found is None:
            return None
        image, step = found
        provider = self.provider_for(step)
        taken = accepted_options(provider, step) if provider is not None else frozenset(Option)
        return replace(image, ignored=asked - taken)

    async def _run_chain(
        self, chain: list[ModelId], prompt: str, options: ImageOptions, attempts: list[Attempt]
    ) -> tuple[GeneratedImage, ModelId] | None:
        single = replace(options, count=1)
        cooling: list[tuple[ModelId, ImageProvider]] = []
        for step in chain:
            provider = self.provider_for(step)
            if provider is None or not provider.available(step):
                name = provider.name if provider else MODELS[step].provider
                attempts.append(Attempt(name, step.value, ErrorKind.NOT_CONFIGURED.value))
                continue
            if self._health is not None and await self._health.cooling_down(_key(provider, step)):
                attempts.append(Attempt(provider.name, step.value, COOLING_DOWN))
                cooling.append((step, provider))
                continue
            found = await self._attempt(step, provider, prompt, single, attempts)
            if found is not None:
                return found, step
        # Everything that could run is resting: better a slow answer than none, so try those too.
        for step, provider in cooling:
            found = await self._attempt(step, provider, prompt, single, attempts)
            if found is not None:
                return found, step
        return None

    async def _attempt(
        self, step: ModelId, provider: ImageProvider, prompt: str, options: ImageOptions, attempts: list[Attempt]
    ) -> GeneratedImage | None:
        key = _key(provider, step)
        call = functools.partial(provider.generate, step, prompt, options)
        async with self._slot(step):  # latency is the provider's, not the wait for a slot
            outcome = await run_step(
                call, provider=provider.name, model=step.value, key=key, health=self._health, attempts=attempts
            )
        if isinstance(outcome, ProviderError):
            if outcome.kind is ErrorKind.REFUSED and not self._policy.refusal_fallback:
                # A refusal is an answer, not an outage: it ends the chain unless the operator opted
                # in to falling back.
                raise _Refused(outcome.detail)
            return None
        return None if outcome is None else _as_generated(outcome, step)

    def _slot(self, step: ModelId) -> AbstractAsyncContextManager[None]:
        if self._limiter is None:
            return nullcontext()
        return self._limiter.slot(step.value)


def check_request(request: GenerationRequest) -> GenerationFailed | None:
    """Whether a request may run at all: the level holds the model, and the request is well formed.
    The one check, made where a request comes in (GenerationJobs.submit, generate_checked)."""
    if not request.level.allows(MODELS[request.model].min_level):
        return GenerationFailed(request.model, FailureReason.FORBIDDEN_MODEL, [])
    problem = validate(request)
    if problem is not None:
        return GenerationFailed(request.model, FailureReason.INVALID_REQUEST, [], detail=problem)
    return None


def validate(request: GenerationRequest) -> str | None:
    """A reason the request cannot be served, or None."""
    prompt = request.prompt.strip()
    if not prompt:
        return "empty prompt"
    if len(prompt) > MAX_PROMPT_CHARS:
        return f"prompt longer than {MAX_PROMPT_CHARS} characters"
    opts = request.options
    if not 1 <= opts.count <= MAX_COUNT:
        return f"count must be 1..{MAX_COUNT}"
    for side in (opts.width, opts.height):
        if side is not None and not MIN_SIDE <= side <= MAX_SIDE:
            return f"width and height must be {MIN_SIDE}..{MAX_SIDE}"
    if (opts.width is None) != (opts.height is None):
        return "give both width and height"
    if opts.aspect_ratio is not None:
        try:
            w, h = parse_ratio(opts.aspect_ratio)
        except ValueError:
            return "aspect ratio must look like 16:9"
        if max(w / h, h / w) > 4:
            return "aspect ratio must be between 1:4 and 4:1"
    return None


def _nth_options(options: ImageOptions, base_seed: int, index: int) -> ImageOptions:
    """Image `index` of a request: one image, the base seed plus its index (so the set can be reproduced)."""
    return replace(options, count=1, seed=(base_seed + index) % (SEED_MAX + 1))


def _asked(options: ImageOptions) -> frozenset[Option]:
    """The options the user set (a seed we picked ourselves is not one)."""
    asked = set()
    if options.aspect_ratio or (options.width and options.height):
        asked.add(Option.ASPECT_RATIO)
    if options.seed is not None:
        asked.add(Option.SEED)
    if options.negative_prompt:
        asked.add(Option.NEGATIVE_PROMPT)
    return frozenset(asked)


def _as_generated(image: ProviderImage, step: ModelId) -> GeneratedImage:
    return GeneratedImage(
        image.data,
        image.mime_type,
        step,
        image.provider,
        image.model,
        image.prompt_shortened,
        seed=image.seed,
        width=image.width,
        height=image.height,
    )


def _key(provider: ImageProvider, step: ModelId) -> str:
    return f"{provider.name}/{step.value}"
