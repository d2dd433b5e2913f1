"""Per-prompt flags: parsed out of the prompt, every malformed or unknown one named."""

from __future__ import annotations

import pytest

from bot.prompt_flags import FlagError, FlagProblem, Overrides, parse_prompt
from bot.services.preferences import Preferences


def test_a_prompt_without_flags_is_left_alone() -> None:
    parsed = parse_prompt("  a red fox in the snow  ")
    assert parsed.text == "a red fox in the snow" and parsed.overrides == Overrides()


def test_every_flag_at_the_end() -> None:
    parsed = parse_prompt("a red fox --ar 16:9 --n 2 --seed 42 --style anime --no text, watermark")
    assert parsed.text == "a red fox"
    assert parsed.overrides == Overrides(
        aspect_ratio="16:9", count=2, seed=42, style="anime", negative_prompt="text, watermark"
    )


def test_flags_in_the_middle_give_the_rest_back_to_the_prompt() -> None:
    parsed = parse_prompt("a red fox --ar 9:16 sitting in snow --seed 7 at dusk")
    assert parsed.text == "a red fox sitting in snow at dusk"
    assert parsed.overrides == Overrides(aspect_ratio="9:16", seed=7)


def test_no_takes_every_word_up_to_the_next_flag() -> None:
    parsed = parse_prompt("a cat --no dogs, people,  text --n 3")
    assert parsed.overrides.negative_prompt == "dogs, people, text" and parsed.overrides.count == 3
    assert parsed.text == "a cat"


def test_a_phone_s_em_dash_counts_as_two_hyphens_and_case_does_not_matter() -> None:
    parsed = parse_prompt("a cat —AR 3:2 –n 4 --Style Watercolor")
    assert parsed.overrides == Overrides(aspect_ratio="3:2", count=4, style="watercolor")


def test_hyphens_inside_words_and_a_lone_double_hyphen_are_prompt_text() -> None:
    parsed = parse_prompt("a well--known cat -- sitting")
    assert parsed.text == "a well--known cat -- sitting" and parsed.overrides == Overrides()


def test_size_written_with_an_x_and_style_none() -> None:
    parsed = parse_prompt("a cat --ar 4x3 --style none")
    assert parsed.overrides == Overrides(aspect_ratio="4:3", style="none")


@pytest.mark.parametrize(
    ("text", "flag", "problem"),
    [
        ("a cat --foo 3", "--foo", FlagProblem.UNKNOWN),
        ("a cat --ar", "--ar", FlagProblem.MISSING),
        ("a cat --ar 5:4", "--ar", FlagProblem.INVALID),
        ("a cat --ar wide", "--ar", FlagProblem.INVALID),
        ("a cat --n 5", "--n", FlagProblem.INVALID),
        ("a cat --n 0", "--n", FlagProblem.INVALID),
        ("a cat --n two", "--n", FlagProblem.INVALID),
        ("a cat --seed -1", "--seed", FlagProblem.INVALID),
        ("a cat --seed 99999999999", "--seed", FlagProblem.INVALID),
        ("a cat --seed 4.2", "--seed", FlagProblem.INVALID),
        ("a cat --style vaporwave", "--style", FlagProblem.INVALID),
        ("a cat --no", "--no", FlagProblem.MISSING),
        ("a cat --no " + "x" * 301, "--no", FlagProblem.INVALID),
        ("a cat --n 2 --n 3", "--n", FlagProblem.REPEATED),
        ("a cat —seed", "—seed", FlagProblem.MISSING),
    ],
)
def test_malformed_flags_are_named(text: str, flag: str, problem: FlagProblem) -> None:
    with pytest.raises(FlagError) as caught:
        parse_prompt(text)
    assert caught.value.flag == flag and caught.value.problem is problem


def test_flags_override_stored_settings_and_the_rest_stay() -> None:
    stored = Preferences(aspect_ratio="3:4", count=2, seed=None, negative_prompt="blur", style="photo")
    options = stored.options(parse_prompt("a cat --n 4 --seed 0 --style none").overrides)
    assert (options.aspect_ratio, options.count, options.seed) == ("3:4", 4, 0)
    assert options.negative_prompt == "blur" and options.style is None
    plain = stored.options()
    assert (plain.count, plain.seed, plain.style) == (2, None, "photo")
