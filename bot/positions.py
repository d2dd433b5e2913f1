"""While a job waits for a worker, its status message shows its place in line and an estimate.

One instance at a time runs this (under a lease), every few seconds: a status message is edited
only when its place changed, and each chat gets at most one edit per round, so Telegram's
per-chat limit is respected whatever the length of the line.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import I18n

from bot.clock import Clock
from bot.i18n import pick_locale
from bot.services.jobs import GenerationJobs, InLine
from bot.texts import model_title

log = logging.getLogger(__name__)

EVERY_SECONDS = 3.0
# A job that starts within this long never shows a place in line: most do.
SHOW_AFTER = timedelta(seconds=3)
PACE_WINDOW = timedelta(minutes=5)
# Edits count against Telegram's 30 messages a second too: deliveries come first.
MAX_EDITS_PER_ROUND = 20


class LinePositions:
    def __init__(self, bot: Bot, jobs: GenerationJobs, i18n: I18n, clock: Clock) -> None:
        self._bot = bot
        self._jobs = jobs
        self._i18n = i18n
        self._clock = clock
        self._shown: dict[int, int] = {}  # generation id -> the place its message shows

    async def update(self) -> int:
        """One round; returns how many status messages were edited."""
        now = self._clock.now()
        line = await self._jobs.line()
        pace = await self._jobs.finished_since(now - PACE_WINDOW) / PACE_WINDOW.total_seconds()  # jobs per second
        edited = 0
        chats: set[int] = set()
        for place, job in enumerate(line, start=1):
            if edited >= MAX_EDITS_PER_ROUND:
                break
            if job.chat_id in chats or self._shown.get(job.generation_id) == place:
                continue
            if job.enqueued_at is not None and now - job.enqueued_at < SHOW_AFTER:
                continue
            chats.add(job.chat_id)
            if await self._edit(job, place, pace):
                edited += 1
            self._shown[job.generation_id] = place
        waiting = {job.generation_id for job in line}
        for gone in [gid for gid in self._shown if gid not in waiting]:
            del self._shown[gone]  # started or withdrawn: the worker deletes the message when done
        return edited

    async def _edit(self, job: InLine, place: int, pace: float) -> bool:
        locale = pick_locale(job.locale)
        with self._i18n.context(), self._i18n.use_locale(locale):
            text = self._i18n.gettext("⏳ You are #{place} in line for {model}.").format(
                place=place, model=model_title(job.model)
            )
            if pace > 0:
                minutes = max(math.ceil(place / pace / 60), 1)
                text += " " + self._i18n.gettext("About {minutes} min.").format(minutes=minutes)
        try:
            await self._bot.edit_message_text(text=text, chat_id=job.chat_id, message_id=job.status_message_id)
            return True
        except TelegramAPIError as exc:  # deleted, too old, or unchanged: the job is unaffected
            log.debug("place in line not shown for %s: %s", job.generation_id, type(exc).__name__)
            return False
