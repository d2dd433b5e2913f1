"""Content safety without Telegram: the word list, its start-up errors, the chain stopping at a refusal
(or, opted in, going on), and the once-a-day alert claim kept in the database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.catalog import ModelId
from bot.clock import ManualClock
from bot.config import ConfigError, load_settings
from bot.db import SessionFactory
from bot.levels import Level
from bot.providers.base import ErrorKind, ImageOptions
from bot.safety import WORD_LIST, BlockedTerms, SafetyPolicy
from bot.services.generation import FailureReason, GenerationFailed, GenerationRequest, GenerationResult
from bot.services.generation import GenerationService as Service
from bot.services.health import ProviderHealth
from bot.services.refusals import RefusalService
from bot.services.users import Profile, UserService
from tests.conftest import TOKEN
from tests.support import default_stubs

# -- the word list ----------------------------------------------------------------------------------


def terms(*lines: str) -> BlockedTerms:
    return BlockedTerms.parse(lines)


@pytest.mark.parametrize(
    ("prompt", "found"),
    [
        ("some GORE in the snow", "gore"),
        ("a gorеgeous sunset", None),  # a whole word only (and a Cyrillic е is no Latin e)
        ("Gorey details", None),
        ("blood   bath at dawn", "blood bath"),  # any whitespace between the words of a phrase
        ("ｇｏｒｅ", "gore"),  # full-width letters fold to plain ones
        ("a glass vase", None),
        ("kill3r robot", "re:kill\\d+r"),
        ("nothing here", None),
    ],
)
def test_terms_are_whole_words_in_any_case_and_regexes_when_marked(prompt: str, found: str | None) -> None:
    word_list = terms("# comment", "", "gore", "  blood bath  ", "re:kill\\d+r")
    assert len(word_list) == 3
    assert word_list.match(prompt) == found


def test_a_plain_term_with_regex_characters_is_literal() -> None:
    assert terms("c++").match("I like c++ code") == "c++"
    assert terms("c++").match("I like ccc code") is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("re:foo(", "line 2: bad regular expression 'foo(': missing ), unterminated subpattern at position 3"),
        ("re:   ", "line 2: empty regular expression"),
        ("re:x*", "line 2: regular expression 'x*' matches an empty prompt"),
    ],
)
def test_a_bad_regex_names_its_line(line: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        terms("gore", line)
    assert str(info.value).startswith(reason)


def test_a_bad_word_list_stops_start_up_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "blocked.txt").write_text("gore\n# a comment\nre:[unclosed\n", encoding="utf-8")
    env = tmp_path / ".env"
    env.write_text(f"BLOCKED_TERMS_FILE={tmp_path / 'blocked.txt'}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    message = str(info.value)
    assert message.startswith("Setting BLOCKED_TERMS_FILE: blocked.txt line 3: bad regular expression '[unclosed'")
    assert "\n" not in message

    env.write_text(f"BLOCKED_TERMS_FILE={tmp_path / 'missing.txt'}\n")
    with pytest.raises(ConfigError, match=r"BLOCKED_TERMS_FILE: cannot read .*missing\.txt: FileNotFoundError"):
        load_settings(env)


def test_python_m_bot_stops_on_a_bad_word_list_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "blocked.txt").write_text("gore\nre:(?P<x\n", encoding="utf-8")
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("BLOCKED_TERMS_FILE", str(tmp_path / "blocked.txt"))
    assert main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "Configuration error: Setting BLOCKED_TERMS_FILE: blocked.txt line 2: bad regular expression "
        "'(?P<x': missing >, unterminated name at position 4"
    ]


def test_safety_settings_defaults_and_values(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("BLOCKED_TERMS_FILE=\n")
    settings = load_settings(env)
    assert (settings.safety_level, settings.refusal_fallback, settings.refusal_alert) == ("standard", False, 5)
    assert settings.blocked_terms_file is None
    env.write_text("SAFETY_LEVEL=Strict\nREFUSAL_FALLBACK=1\nREFUSAL_ALERT=0\n")
    settings = load_settings(env)
    assert (settings.safety_level, settings.refusal_fallback, settings.refusal_alert) == ("strict", True, 0)
    env.write_text("SAFETY_LEVEL=lax\n")
    with pytest.raises(ConfigError, match="SAFETY_LEVEL"):
        load_settings(env)


# -- the chain --------------------------------------------------------------------------------------


def request(prompt: str = "a cat", model: ModelId = ModelId.GEMINI_FLASH, count: int = 1) -> GenerationRequest:
    return GenerationRequest(prompt, model, Level.SUBSCRIBER, ImageOptions(count=count))


async def test_a_refusal_ends_the_chain_with_the_providers_reason() -> None:
    stubs = default_stubs()
    stubs["gemini"].outcomes = [ErrorKind.REFUSED]
    outcome = await Service(list(stubs.values())).generate(request())
    assert isinstance(outcome, GenerationFailed)
    assert (outcome.reason, outcome.error_class) == (FailureReason.REFUSED, "refused")
    assert outcome.refusal is not None and (outcome.refusal.provider, outcome.refusal.detail) == (
        "gemini",
        "stub failure",
    )
    assert stubs["hf"].calls == [] and stubs["pollinations"].calls == []


async def test_a_refusal_does_not_make_the_provider_rest(clock: ManualClock) -> None:
    stubs = default_stubs()
    stubs["gemini"].outcomes = [ErrorKind.REFUSED] * 5
    service = Service(list(stubs.values()), ProviderHealth(clock))
    for _ in range(5):
        await service.generate(request())
    assert len(stubs["gemini"].calls) == 5  # never skipped as "cooling down"
    assert (await service.cooldowns())["gemini-flash"] == 0


async def test_refusal_fallback_tries_the_next_provider() -> None:
    stubs = default_stubs()
    stubs["gemini"].outcomes = [ErrorKind.REFUSED]
    outcome = await Service(list(stubs.values()), policy=SafetyPolicy(refusal_fallback=True)).generate(request())
    assert isinstance(outcome, GenerationResult)
    assert outcome.first.provider == "hf-replicate"
    assert [a.outcome for a in outcome.attempts] == ["refused", "ok"]


async def test_with_fallback_a_refusal_then_outages_is_still_a_refusal() -> None:
    stubs = default_stubs()
    stubs["gemini"].outcomes = [ErrorKind.REFUSED]
    stubs["hf"].outcomes = [ErrorKind.UNAVAILABLE, ErrorKind.UNAVAILABLE]
    stubs["pollinations"].outcomes = [ErrorKind.TIMEOUT]
    outcome = await Service(list(stubs.values()), policy=SafetyPolicy(refusal_fallback=True)).generate(request())
    assert isinstance(outcome, GenerationFailed) and outcome.reason is FailureReason.REFUSED
    assert outcome.refusal is not None and outcome.refusal.provider == "gemini"


async def test_outages_then_a_refusal_is_a_refusal_not_all_failed() -> None:
    stubs = default_stubs()
    stubs["gemini"].outcomes = [ErrorKind.UNAVAILABLE]
    stubs["hf"].outcomes = [ErrorKind.REFUSED]
    outcome = await Service(list(stubs.values())).generate(request())
    assert isinstance(outcome, GenerationFailed) and outcome.reason is FailureReason.REFUSED
    assert stubs["pollinations"].calls == []


async def test_the_other_images_of_a_request_are_kept_when_one_is_refused() -> None:
    """The images run at once: a refusal ends the chain of the image it refused (no laxer model is
    asked for it), and the images made alongside are still delivered."""
    stubs = default_stubs()
    stubs["gemini"].outcomes = ["ok", ErrorKind.REFUSED, "ok"]
    outcome = await Service(list(stubs.values())).generate(request(count=3))
    assert isinstance(outcome, GenerationResult) and len(outcome.images) == 2
    assert len(stubs["gemini"].calls) == 3 and stubs["hf"].calls == [] and stubs["pollinations"].calls == []


async def test_the_word_list_refuses_before_any_provider_is_called() -> None:
    stubs = default_stubs()
    policy = SafetyPolicy(blocked_terms=terms("gore"), refusal_fallback=True)
    outcome = await Service(list(stubs.values()), policy=policy).generate(request("much Gore here"))
    assert isinstance(outcome, GenerationFailed) and outcome.reason is FailureReason.REFUSED
    assert outcome.refusal is not None
    assert (outcome.refusal.provider, outcome.refusal.detail) == (WORD_LIST, "blocked term gore")
    assert all(stub.calls == [] for stub in stubs.values())


# -- the alert claim ---------------------------------------------------------------------------------


async def test_the_alert_is_claimed_once_a_day_across_service_instances(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    await UserService(sessions, clock, frozenset()).register(Profile(id=5, first_name="Eve"))
    assert await RefusalService(sessions, clock).claim_alert(5) is True
    assert await RefusalService(sessions, clock).claim_alert(5) is False  # a restart changes nothing
    clock.advance(timedelta(days=1))
    assert await RefusalService(sessions, clock).claim_alert(5) is True
    assert await RefusalService(sessions, clock).claim_alert(404) is False  # no such user


async def test_the_alert_claim_and_todays_count_on_postgres(pg_sessions: SessionFactory, clock: ManualClock) -> None:
    await UserService(pg_sessions, clock, frozenset()).register(Profile(id=6, first_name="Pat"))
    refusals = RefusalService(pg_sessions, clock)
    assert await refusals.today(6) == 0
    assert [await refusals.claim_alert(6), await refusals.claim_alert(6)] == [True, False]
    clock.advance(timedelta(days=1))
    assert await RefusalService(pg_sessions, clock).claim_alert(6) is True
