"""The worker's first step for a generate job: which prompt it draws from.

Prompt help runs here, in the job, not in the update handler: the handler answers within
milliseconds, and the rewrite is stored on the row (`prompt_used`) before the provider call, so a
job resumed after a restart reuses it. Help is asked for only when the user's switch is on at run
time and the job has no stored prompt yet ("use my own words" jobs are stored with the original).
Only for prompts typed in the chat: inline mode and the HTTP API draw from exactly what was sent.
"""

from __future__ import annotations

import logging

from bot.assist.prompt_help import PromptHelper
from bot.safety import BlockedTerms
from bot.services.jobs import JobView
from bot.services.prompts import PromptRecords
from models import JobKind

log = logging.getLogger(__name__)


class PromptStep:
    def __init__(self, records: PromptRecords, helper: PromptHelper, blocked: BlockedTerms | None = None) -> None:
        self._records = records
        self._helper = helper
        # A prompt the word list refuses is not rewritten: a translation must not launder a listed term.
        self._blocked = blocked or BlockedTerms()

    async def prompt_for(self, job: JobView, owner: str) -> str:
        """The prompt to generate from: stored, rewritten (and stored), or the user's own."""
        if job.kind is not JobKind.GENERATE or job.user_id is None or not _in_chat(job):
            return job.prompt
        if job.prompt_used is not None:  # read with the claimed row: a resumed job asks no one again
            return job.prompt_used
        if not self._helper.available or self._blocked.match(job.prompt) is not None:
            return job.prompt
        if not await self._records.enabled(job.user_id):
            return job.prompt
        rewritten = await self._helper.rewrite(job.prompt)
        used = rewritten or job.prompt
        if not await self._records.record(job.id, owner, used):
            log.info("generation %s: prompt not stored (the lease moved on)", job.id)
        elif rewritten is not None:
            log.info("generation %s: prompt help rewrote the prompt (%d -> %d chars)", job.id, len(job.prompt),
                     len(used))  # fmt: skip
        return used


def _in_chat(job: JobView) -> bool:
    """A prompt typed in the chat with the bot, whose caption can show the rewrite and offer the original.
    Inline messages and HTTP API callers get exactly the prompt they sent."""
    return job.source == "telegram" and job.inline_message_id is None
