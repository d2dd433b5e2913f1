"""Prompt help: a prompt not in English is translated, and a short one enriched, by a chat model.

Image models follow English best, and a three-word prompt leaves them guessing. Help is a favour,
never a gate: on any failure the caller draws from the user's own words, and the operator's log
says why (problem and model, never the key).
"""

from __future__ import annotations

import logging
import re

from .assistant import RouterAssistant
from .errors import RouterError

log = logging.getLogger(__name__)

SHORT_WORDS = 6  # prompts with fewer words than this are enriched
MAX_ANSWER_CHARS = 1000  # a rewritten prompt longer than this is cut (the caption has 1024)
MAX_TOKENS = 300

INSTRUCTIONS = (
    "You write prompts for a text-to-image model. Rewrite the user's image description as one English "
    "prompt. If it is not in English, translate it faithfully. If it is short, add concrete visual "
    "detail (subject, setting, lighting, style) without changing what was asked for. Answer with the "
    "prompt only: one line, no quotes, no explanations, at most 400 characters."
)


def looks_english(text: str) -> bool:
    """Nearly all letters are Latin a-z (a stray accented word does not make it foreign)."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return True
    latin = sum(1 for ch in letters if "a" <= ch.lower() <= "z")
    return latin / len(letters) >= 0.9


def needs_help(prompt: str) -> bool:
    return not looks_english(prompt) or len(prompt.split()) < SHORT_WORDS


def clean_answer(answer: str) -> str:
    """One line, without the quotes or the "Prompt:" label chat models like to add."""
    line = " ".join(answer.split())
    line = re.sub(r"^(?:english\s+)?prompt\s*:\s*", "", line, flags=re.IGNORECASE)
    line = line.strip().strip("\"'«»“”").strip()
    return line[:MAX_ANSWER_CHARS].rstrip()


class PromptHelper(RouterAssistant):
    async def rewrite(self, prompt: str) -> str | None:
        """The prompt to draw from instead, or None: nothing to do, or the model failed (logged)."""
        if not self._chat.available or not needs_help(prompt):
            return None
        messages = [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": prompt}]
        try:
            answer = await self._chat.complete(
                self._model, messages, budget=self._timeout, max_tokens=MAX_TOKENS, temperature=0.3
            )
        except RouterError as exc:
            log.warning("prompt help failed, using the original prompt: %s %s", exc.problem.value, exc)
            return None
        rewritten = clean_answer(answer)
        if not rewritten:
            log.warning("prompt help: %s answered nothing usable; using the original prompt", self._model)
            return None
        return rewritten
