"""The fallback chain: order, level gating, skipping unconfigured providers, typed outcomes."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta

import pytest

from bot.catalog import ModelId, chain_for
from bot.clock import ManualClock
from bot.coordination.concurrency import MemoryConcurrency
from bot.levels import Level
from bot.providers.base import ErrorKind, ImageOptions, Option, ProviderImage
from bot.services.generation import (
    FailureReason,
    GenerationFailed,
    GenerationRequest,
    GenerationResult,
    check_request,
)
from bot.services.generation import GenerationService as Service
from bot.services.health import ProviderHealth
from bot.styles import SEED_MAX, STYLES
from tests.support import StubProvider, default_stubs


def test_chain_puts_the_choice_first_then_gemini_hf_pollinations() -> None:
    assert chain_for(ModelId.FLUX_DEV, Level.USER) == [ModelId.FLUX_DEV, ModelId.GEMINI_FLASH, ModelId.POLLINATIONS]
    assert chain_for(ModelId.GEMINI_FLASH, Level.SUBSCRIBER) == [
        ModelId.GEMINI_FLASH,
        ModelId.FLUX_DEV,
        ModelId.FLUX_PRO,
        ModelId.POLLINATIONS,
    ]
    assert chain_for(ModelId.FLUX_PRO, Level.ADMIN)[0] is ModelId.FLUX_PRO


def test_flux_pro_is_never_a_fallback_for_a_user() -> None:
    for model in (ModelId.GEMINI_FLASH, ModelId.FLUX_DEV):
        assert ModelId.FLUX_PRO not in chain_for(model, Level.USER)


async def test_first_working_provider_wins_and_attempts_are_kept() -> None:
    stubs = default_stubs()
    stubs["gemini"].outcomes = [ErrorKind.UNAVAILABLE]
    outcome = await Service(list(stubs.values())).generate(GenerationRequest("a cat", ModelId.GEMINI_FLASH, Level.USER))
    assert isinstance(outcome, GenerationResult)
    assert outcome.first.step is ModelId.FLUX_DEV and outcome.first.provider == "hf-replicate"
    assert outcome.fallback_used
    assert [(a.provider, a.outcome) for a in outcome.attempts] == [
        ("gemini", "unavailable"),
        ("hf-replicate", "ok"),
    ]


async def test_unconfigured_providers_are_skipped_so_pollinations_alone_still_generates() -> None:
    stubs = default_stubs()
    stubs["gemini"]._configured = False
    stubs["hf"]._configured = False
    outcome = await Service(list(stubs.values())).generate(GenerationRequest("a cat", ModelId.GEMINI_FLASH, Level.USER))
    assert isinstance(outcome, GenerationResult)
    assert outcome.first.provider == "pollinations"
    assert stubs["gemini"].calls == [] and stubs["hf"].calls == []
    assert [a.outcome for a in outcome.attempts] == ["not_configured", "not_configured", "ok"]


async def test_everything_failing_is_a_typed_failure(caplog: pytest.LogCaptureFixture) -> None:
    stubs = default_stubs()
    for stub in stubs.values():
        stub.outcomes = [ErrorKind.TIMEOUT]
    with caplog.at_level(logging.WARNING):
        outcome = await Service(list(stubs.values())).generate(GenerationRequest("a cat", ModelId.FLUX_DEV, Level.USER))
    assert isinstance(outcome, GenerationFailed)
    assert outcome.reason is FailureReason.ALL_FAILED and outcome.error_class == "timeout"
    assert len(outcome.attempts) == 3
    failures = [r.getMessage() for r in caplog.records if "provider failed" in r.getMessage()]
    assert len(failures) == 3 and all("status=503" in m and "latency_ms=" in m for m in failures)


async def test_a_crashing_provider_does_not_stop_the_chain() -> None:
    stubs = default_stubs()
    stubs["gemini"].outcomes = [RuntimeError("bug")]
    outcome = await Service(list(stubs.values())).generate(GenerationRequest("a cat", ModelId.GEMINI_FLASH, Level.USER))
    assert isinstance(outcome, GenerationResult) and outcome.first.provider == "hf-replicate"


async def test_requesting_a_model_above_the_level_is_refused_without_calling_anyone() -> None:
    stubs = default_stubs()
    outcome = await Service(list(stubs.values())).generate_checked(
        GenerationRequest("a cat", ModelId.FLUX_PRO, Level.USER)
    )
    assert isinstance(outcome, GenerationFailed) and outcome.reason is FailureReason.FORBIDDEN_MODEL
    assert all(not s.calls for s in stubs.values())


async def test_nothing_configured_is_no_provider() -> None:
    stub = StubProvider("gemini", [ModelId.GEMINI_FLASH], configured=False)
    outcome = await Service([stub]).generate(GenerationRequest("a cat", ModelId.GEMINI_FLASH, Level.USER))
    assert isinstance(outcome, GenerationFailed) and outcome.reason is FailureReason.NO_PROVIDER


@pytest.mark.parametrize(
    "prompt, options",
    [
        ("   ", ImageOptions()),
        ("x" * 5000, ImageOptions()),
        ("cat", ImageOptions(count=0)),
        ("cat", ImageOptions(width=10, height=10)),
        ("cat", ImageOptions(width=512)),
        ("cat", ImageOptions(aspect_ratio="wide")),
        ("cat", ImageOptions(aspect_ratio="10:1")),
    ],
)
async def test_invalid_requests_are_refused(prompt: str, options: ImageOptions) -> None:
    stubs = default_stubs()
    outcome = await Service(list(stubs.values())).generate_checked(
        GenerationRequest(prompt, ModelId.GEMINI_FLASH, Level.USER, options)
    )
    assert isinstance(outcome, GenerationFailed) and outcome.reason is FailureReason.INVALID_REQUEST
    assert all(not s.calls for s in stubs.values())
    # The same check refuses the job at submit (GenerationJobs.submit), so no row carries such a request.
    assert check_request(GenerationRequest(prompt, ModelId.GEMINI_FLASH, Level.USER, options)) == outcome


def test_a_well_formed_request_within_the_level_passes_the_check() -> None:
    assert check_request(GenerationRequest("a cat", ModelId.FLUX_DEV, Level.USER, ImageOptions(count=2))) is None


async def test_several_images_vary_the_seed_each_through_the_chain() -> None:
    stubs = default_stubs()
    stubs["gemini"].outcomes = [ErrorKind.RATE_LIMITED] * 3
    outcome = await Service(list(stubs.values())).generate(
        GenerationRequest("a cat", ModelId.GEMINI_FLASH, Level.USER, ImageOptions(count=3, seed=7))
    )
    assert isinstance(outcome, GenerationResult) and len(outcome.images) == 3
    assert len(stubs["gemini"].calls) == 3
    assert sorted(opts.seed for _m, _p, opts in stubs["hf"].calls) == [7, 8, 9]
    assert all(opts.count == 1 for _m, _p, opts in stubs["hf"].calls)
    assert [img.seed for img in outcome.images] == [7, 8, 9]  # in the order of their seeds


async def test_several_images_are_made_at_the_same_time() -> None:
    stubs = default_stubs()
    stubs["gemini"].delay = 0.3
    service = Service(list(stubs.values()))
    started = asyncio.get_running_loop().time()
    outcome = await service.generate(
        GenerationRequest("a cat", ModelId.GEMINI_FLASH, Level.USER, ImageOptions(count=4))
    )
    took = asyncio.get_running_loop().time() - started
    assert isinstance(outcome, GenerationResult) and len(outcome.images) == 4
    assert took < 0.9, took  # one after another would take 1.2 s


async def test_the_concurrency_limiter_still_caps_the_images_of_one_request() -> None:
    stubs = default_stubs()
    stubs["gemini"].delay = 0.05
    limiter = MemoryConcurrency({"gemini-flash": 2})
    running = 0
    most = 0
    inner = stubs["gemini"].generate

    async def counting(model: ModelId, prompt: str, options: ImageOptions) -> ProviderImage:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            return await inner(model, prompt, options)
        finally:
            running -= 1

    stubs["gemini"].generate = counting  # type: ignore[method-assign]
    outcome = await Service(list(stubs.values()), limiter=limiter).generate(
        GenerationRequest("a cat", ModelId.GEMINI_FLASH, Level.USER, ImageOptions(count=4))
    )
    assert isinstance(outcome, GenerationResult) and len(outcome.images) == 4
    assert most == 2


async def test_one_failed_image_of_four_leaves_three() -> None:
    stubs = default_stubs()
    stubs["gemini"].outcomes = ["ok", ErrorKind.UNAVAILABLE, "ok", "ok"]
    stubs["hf"]._configured = False
    stubs["pollinations"]._configured = False
    outcome = await Service(list(stubs.values())).generate(
        GenerationRequest("a cat", ModelId.GEMINI_FLASH, Level.USER, ImageOptions(count=4, seed=100))
    )
    assert isinstance(outcome, GenerationResult) and len(outcome.images) == 3


async def test_without_a_seed_one_is_picked_and_the_images_count_up_from_it() -> None:
    stubs = default_stubs()
    service = Service(list(stubs.values()), rng=random.Random(5))
    outcome = await service.generate(GenerationRequest("a cat", ModelId.FLUX_DEV, Level.USER, ImageOptions(count=2)))
    assert isinstance(outcome, GenerationResult)
    seeds = sorted(opts.seed for _m, _p, opts in stubs["hf"].calls if opts.seed is not None)
    assert len(seeds) == 2 and seeds[1] == seeds[0] + 1
    assert random.Random(5).randint(0, SEED_MAX) == seeds[0]


async def test_the_style_is_folded_into_the_prompt_and_ignored_options_are_named() -> None:
    gemini = StubProvider("gemini", [ModelId.GEMINI_FLASH])
    gemini.accepts = {ModelId.GEMINI_FLASH: frozenset({Option.ASPECT_RATIO})}  # type: ignore[attr-defined]
    outcome = await Service([gemini]).generate(
        GenerationRequest(
            "a cat",
            ModelId.GEMINI_FLASH,
            Level.USER,
            ImageOptions(seed=3, negative_prompt="dogs", aspect_ratio="16:9", style="anime"),
        )
    )
    assert isinstance(outcome, GenerationResult)
    [(_model, prompt, _opts)] = gemini.calls
    assert prompt.startswith("a cat. ") and STYLES["anime"].suffix in prompt
    assert outcome.first.ignored == {Option.SEED, Option.NEGATIVE_PROMPT}


async def test_a_seed_picked_by_the_service_is_not_an_ignored_option() -> None:
    gemini = StubProvider("gemini", [ModelId.GEMINI_FLASH])
    gemini.accepts = {ModelId.GEMINI_FLASH: frozenset({Option.ASPECT_RATIO})}  # type: ignore[attr-defined]
    outcome = await Service([gemini]).generate(GenerationRequest("a cat", ModelId.GEMINI_FLASH, Level.USER))
    assert isinstance(outcome, GenerationResult) and outcome.first.ignored == frozenset()


async def test_a_provider_in_an_outage_rests_and_is_tried_again_later() -> None:
    clock = ManualClock(datetime(2026, 11, 23, tzinfo=UTC))
    stubs = default_stubs()
    stubs["gemini"].outcomes = [ErrorKind.TIMEOUT] * 3
    service = Service(list(stubs.values()), ProviderHealth(clock))
    request = GenerationRequest("a cat", ModelId.GEMINI_FLASH, Level.USER)
    for _ in range(3):
        outcome = await service.generate(request)
        assert isinstance(outcome, GenerationResult) and outcome.first.provider == "hf-replicate"
    assert len(stubs["gemini"].calls) == 3
    outcome = await service.generate(request)  # resting: straight to the next step
    assert isinstance(outcome, GenerationResult) and len(stubs["gemini"].calls) == 3
    assert outcome.attempts[0].outcome == "cooling_down"
    clock.advance(timedelta(seconds=31))
    outcome = await service.generate(request)
    assert isinstance(outcome, GenerationResult) and outcome.first.provider == "gemini"


async def test_rate_limit_rests_at_once_and_bad_prompts_never_do() -> None:
    clock = ManualClock(datetime(2026, 11, 23, tzinfo=UTC))
    stubs = default_stubs()
    stubs["gemini"].outcomes = [ErrorKind.BAD_OUTPUT] * 5 + [ErrorKind.RATE_LIMITED]
    service = Service(list(stubs.values()), ProviderHealth(clock))
    request = GenerationRequest("a cat", ModelId.GEMINI_FLASH, Level.USER)
    for _ in range(6):
        await service.generate(request)
    assert len(stubs["gemini"].calls) == 6
    await service.generate(request)
    assert len(stubs["gemini"].calls) == 6  # 429: resting for a minute
    clock.advance(timedelta(seconds=61))
    await service.generate(request)
    assert len(stubs["gemini"].calls) == 7


async def test_when_everything_rests_the_resting_steps_are_still_tried() -> None:
    clock = ManualClock(datetime(2026, 11, 23, tzinfo=UTC))
    stubs = default_stubs()
    for stub in stubs.values():
        stub.outcomes = [ErrorKind.RATE_LIMITED]
    service = Service(list(stubs.values()), ProviderHealth(clock))
    request = GenerationRequest("a cat", ModelId.GEMINI_FLASH, Level.USER)
    assert isinstance(await service.generate(request), GenerationFailed)
    outcome = await service.generate(request)  # all resting, but the user still gets an image
    assert isinstance(outcome, GenerationResult) and outcome.first.provider == "gemini"
