"""EditingService: the edit chain's order, refusals, the word list and cool-downs, with scripted editors."""

from __future__ import annotations

from bot.catalog import ModelId
from bot.clock import ManualClock
from bot.providers.base import ErrorKind, ProviderError, ProviderImage
from bot.safety import BlockedTerms, SafetyPolicy
from bot.services.editing import EditingService, EditStep
from bot.services.generation import COOLING_DOWN, FailureReason, GenerationFailed, GenerationResult
from bot.services.health import ProviderHealth
from tests.support import png

GEMINI, FLUX = ModelId.GEMINI_FLASH, ModelId.FLUX_DEV


class Scripted:
    """An editor that answers from a script: "ok" or an ErrorKind per call (then "ok")."""

    def __init__(self, name: str, outcomes: list[str | ErrorKind] | None = None, *, configured: bool = True) -> None:
        self.name = name
        self.outcomes = list(outcomes or [])
        self.configured = configured
        self.calls = 0

    def can_edit(self) -> bool:
        return self.configured

    async def edit(self, image: bytes, mime_type: str, instruction: str) -> ProviderImage:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if isinstance(outcome, ErrorKind):
            raise ProviderError(outcome, self.name, f"{self.name}-model", status=503, detail="scripted")
        return ProviderImage(png(), self.name, f"{self.name}-model")

    async def aclose(self) -> None:
        return None


async def edit(service: EditingService, instruction: str = "add a moon") -> GenerationResult | GenerationFailed:
    return await service.edit(png(), "image/png", instruction, GEMINI)


async def test_an_outage_moves_on_and_the_result_names_who_made_it() -> None:
    first, second = Scripted("gemini", [ErrorKind.UNAVAILABLE]), Scripted("replicate")
    outcome = await edit(EditingService([EditStep(GEMINI, first), EditStep(FLUX, second)]))
    assert isinstance(outcome, GenerationResult)
    assert (outcome.first.step, outcome.first.provider, outcome.fallback_used) == (FLUX, "replicate", True)
    assert [a.outcome for a in outcome.attempts] == ["unavailable", "ok"]


async def test_a_refusal_ends_the_chain_unless_the_operator_opts_in() -> None:
    first, second = Scripted("gemini", [ErrorKind.REFUSED]), Scripted("replicate")
    outcome = await edit(EditingService([EditStep(GEMINI, first), EditStep(FLUX, second)]))
    assert isinstance(outcome, GenerationFailed) and outcome.reason is FailureReason.REFUSED
    assert second.calls == 0

    first.outcomes = [ErrorKind.REFUSED]
    policy = SafetyPolicy(refusal_fallback=True)
    outcome = await edit(EditingService([EditStep(GEMINI, first), EditStep(FLUX, second)], policy=policy))
    assert isinstance(outcome, GenerationResult) and second.calls == 1


async def test_the_word_list_refuses_the_instruction_before_any_editor() -> None:
    editor = Scripted("gemini")
    policy = SafetyPolicy(blocked_terms=BlockedTerms.parse(["forbidden thing"]))
    outcome = await edit(EditingService([EditStep(GEMINI, editor)], policy=policy), "add a Forbidden Thing")
    assert isinstance(outcome, GenerationFailed) and outcome.reason is FailureReason.REFUSED
    assert editor.calls == 0


async def test_nothing_configured_and_everything_failing_are_told_apart() -> None:
    idle = Scripted("gemini", configured=False)
    outcome = await edit(EditingService([EditStep(GEMINI, idle)]))
    assert isinstance(outcome, GenerationFailed) and outcome.reason is FailureReason.NO_PROVIDER
    broken = Scripted("gemini", [ErrorKind.TIMEOUT])
    outcome = await edit(EditingService([EditStep(GEMINI, broken)]))
    assert isinstance(outcome, GenerationFailed) and outcome.reason is FailureReason.ALL_FAILED
    upscaled = await EditingService().upscale(png(), "image/png", GEMINI)
    assert isinstance(upscaled, GenerationFailed) and upscaled.reason is FailureReason.NO_PROVIDER
    assert not EditingService().can_upscale() and not EditingService().can_edit()


async def test_a_failing_editor_rests_and_is_tried_last(clock: ManualClock) -> None:
    health = ProviderHealth(clock)
    first = Scripted("gemini", [ErrorKind.UNAVAILABLE] * 3)
    second = Scripted("replicate")
    service = EditingService([EditStep(GEMINI, first), EditStep(FLUX, second)], health=health)
    for _ in range(3):
        await edit(service)
    assert first.calls == 3  # three outages in a row: it rests now

    outcome = await edit(service)
    assert isinstance(outcome, GenerationResult) and first.calls == 3
    assert [a.outcome for a in outcome.attempts] == [COOLING_DOWN, "ok"]

    second.outcomes = [ErrorKind.UNAVAILABLE]  # the other one fails too: the resting one is better than none
    outcome = await edit(service)
    assert isinstance(outcome, GenerationResult) and outcome.first.provider == "gemini" and first.calls == 4
