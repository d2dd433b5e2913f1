"""Content safety in one place: the operator's level, the word list, and what a refusal does.

Each provider maps `SafetyLevel` onto its own switch (Gemini's safety settings, FLUX Pro's
`safety_tolerance`, Replicate's safety checker, Pollinations' `safe` flag; see the adapters). The
chain (`services.generation`) consults `SafetyPolicy` before any provider is called and when one
refuses. Nothing here knows Telegram or the database.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

REGEX_PREFIX = "re:"
WORD_LIST = "word-list"  # the "provider" a word-list refusal is recorded under, so /stats counts it too


class SafetyLevel(StrEnum):
    """How strict every provider's own filter is set (`SAFETY_LEVEL`)."""

    STRICT = "strict"
    STANDARD = "standard"


@dataclass(frozen=True, slots=True)
class BlockedTerm:
    line: str  # as the operator wrote it: what the refusal records
    pattern: re.Pattern[str]


class BlockedTerms:
    """`BLOCKED_TERMS_FILE`: one term a line (a whole word or phrase, any case), or `re:` and a regular
    expression (searched anywhere, any case). Blank lines and lines starting with `#` are skipped.

    Plain terms are escaped, so only lines the operator marked as regular expressions can be malformed.
    """

    def __init__(self, terms: Sequence[BlockedTerm] = ()) -> None:
        self._terms = tuple(terms)

    def __len__(self) -> int:
        return len(self._terms)

    @classmethod
    def parse(cls, lines: Iterable[str]) -> BlockedTerms:
        """Raises ValueError naming the line of a bad regular expression."""
        terms: list[BlockedTerm] = []
        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            terms.append(BlockedTerm(line, _compile(line, number)))
        return cls(terms)

    @classmethod
    def load(cls, path: Path) -> BlockedTerms:
        """Read the file; any problem is a ValueError with a one-line reason for the operator."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {path}: {exc.__class__.__name__}") from None
        try:
            return cls.parse(text.splitlines())
        except ValueError as exc:
            raise ValueError(f"{path.name} {exc}") from None

    def match(self, prompt: str) -> str | None:
        """The first term the prompt contains (as written in the file), or None."""
        if not self._terms:
            return None
        text = unicodedata.normalize("NFKC", prompt)  # full-width letters and ligatures match too
        for term in self._terms:
            if term.pattern.search(text):
                return term.line
        return None


def _compile(line: str, number: int) -> re.Pattern[str]:
    if line.startswith(REGEX_PREFIX):
        source = line[len(REGEX_PREFIX) :].strip()
        if not source:
            raise ValueError(f"line {number}: empty regular expression")
        try:
            pattern = re.compile(source, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"line {number}: bad regular expression {source!r}: {exc}") from None
        if pattern.search("") is not None:
            raise ValueError(
                f"line {number}: regular expression {source!r} matches an empty prompt (it would refuse all)"
            )
        return pattern
    words = r"\s+".join(re.escape(word) for word in unicodedata.normalize("NFKC", line).split())
    # Whole words only: "ass" must not refuse "a glass vase".
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SafetyPolicy:
    """What the chain does about content: the word list, and whether a refusal may fall back."""

    blocked_terms: BlockedTerms = field(default_factory=BlockedTerms)
    # REFUSAL_FALLBACK=1: a refusal is treated like any other failure and the next provider is tried.
    refusal_fallback: bool = False
