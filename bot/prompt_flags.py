"""Per-prompt options typed after (or inside) the prompt: `--ar 16:9 --n 2 --seed 42 --no text --style anime`.

Parsed before anything is charged: a malformed or unknown flag is a `FlagError` naming it, and the
prompt is not submitted. Phones turn "--" into an em dash ("—ar"): that counts as "--" too. A flag
starts a word (whitespace before it), so "well--known" and a lone "--" stay prompt text.
`--no` takes every word up to the next flag; the others take one word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bot.styles import ASPECT_RATIOS, MAX_IMAGES, NEGATIVE_MAX_CHARS, NO_STYLE, SEED_MAX, STYLES

_FLAG = re.compile(r"(?:(?<=\s)|^)(?:--|—|–)([^\s]+)")


class FlagProblem(StrEnum):
    UNKNOWN = "unknown"  # no such flag
    MISSING = "missing"  # the flag has no value
    INVALID = "invalid"  # the value is not one the flag takes
    REPEATED = "repeated"  # the same flag twice


@dataclass(frozen=True, slots=True)
class FlagError(Exception):
    flag: str  # as the user typed it, e.g. "--ar"
    problem: FlagProblem
    value: str = ""


@dataclass(frozen=True, slots=True)
class Overrides:
    """What the flags set; None = not given (the stored setting applies)."""

    aspect_ratio: str | None = None
    count: int | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    style: str | None = None  # NO_STYLE turns a stored style off for this prompt


@dataclass(frozen=True, slots=True)
class ParsedPrompt:
    text: str
    overrides: Overrides


def parse_prompt(text: str) -> ParsedPrompt:
    """Split flags from the prompt; raises FlagError for the first flag that cannot be used."""
    matches = list(_FLAG.finditer(text))
    if not matches:
        return ParsedPrompt(text.strip(), Overrides())
    pieces = [text[: matches[0].start()]]
    values: dict[str, str | int] = {}
    for index, match in enumerate(matches):
        typed = match.group(0)
        name = match.group(1).lower()
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        rest = text[match.end() : end]
        field = _FIELDS.get(name)
        if field is None:
            raise FlagError(typed, FlagProblem.UNKNOWN)
        if field in values:
            raise FlagError(typed, FlagProblem.REPEATED)
        if field == "negative_prompt":
            raw, tail = " ".join(rest.split()), ""
        else:
            words = rest.split(maxsplit=1)
            raw = words[0] if words else ""
            tail = words[1] if len(words) > 1 else ""
        if not raw:
            raise FlagError(typed, FlagProblem.MISSING)
        values[field] = _value(field, raw, typed)
        pieces.append(tail)
    prompt = " ".join(piece.strip() for piece in pieces if piece.strip())
    return ParsedPrompt(prompt, Overrides(**values))  # type: ignore[arg-type]


# Flag names (lower case) → Overrides field.
_FIELDS = {
    "ar": "aspect_ratio",
    "aspect": "aspect_ratio",
    "n": "count",
    "seed": "seed",
    "no": "negative_prompt",
    "style": "style",
}


def _value(field: str, raw: str, typed: str) -> str | int:
    if field == "aspect_ratio":
        ratio = raw.replace("x", ":").replace("×", ":")
        if ratio not in ASPECT_RATIOS:
            raise FlagError(typed, FlagProblem.INVALID, raw)
        return ratio
    if field == "count":
        if not raw.isdecimal() or not 1 <= int(raw) <= MAX_IMAGES:
            raise FlagError(typed, FlagProblem.INVALID, raw)
        return int(raw)
    if field == "seed":
        if not raw.isdecimal() or int(raw) > SEED_MAX:
            raise FlagError(typed, FlagProblem.INVALID, raw)
        return int(raw)
    if field == "style":
        style = raw.lower()
        if style != NO_STYLE and style not in STYLES:
            raise FlagError(typed, FlagProblem.INVALID, raw)
        return style
    if len(raw) > NEGATIVE_MAX_CHARS:  # negative prompt
        raise FlagError(typed, FlagProblem.INVALID, raw[:20] + "…")
    return raw
