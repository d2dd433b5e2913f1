"""Prompt help's state: each user's switch, and what each job really worked from (`prompt_used`).

For a generate job `prompt_used` is the prompt after prompt help; for a describe job it is the
description the vision model gave. The worker writes it before going on, so a job run again after
a restart reuses it instead of asking the model twice (and an answer is never paid for twice).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from bot.catalog import ModelId
from bot.db import SessionFactory
from bot.providers.base import ImageOptions
from bot.services.held import held_by
from models import Generation, GenerationStatus, JobKind, User


@dataclass(frozen=True, slots=True)
class JobText:
    """What a result's buttons need of the job behind it."""

    generation_id: int
    kind: JobKind
    prompt: str
    prompt_used: str | None
    model: ModelId
    status: GenerationStatus
    options: ImageOptions  # what the job asked for (count, ratio, seed…): a re-run asks the same


class PromptRecords:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    # --- the user's switch ----------------------------------------------------------------------

    async def enabled(self, user_id: int) -> bool:
        async with self._sessions() as session:
            return bool(await session.scalar(select(User.prompt_help).where(User.id == user_id)))

    async def set_enabled(self, user_id: int, on: bool) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(User).where(User.id == user_id).values(prompt_help=on))

    # --- per job --------------------------------------------------------------------------------

    async def record(self, generation_id: int, owner: str, text: str) -> bool:
        """Store what the job works from; only by the worker holding the job (False otherwise)."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Generation).where(held_by(generation_id, owner)).values(prompt_used=text)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def job_text(self, generation_id: int, user_id: int) -> JobText | None:
        """The job if it is this user's (a button never acts on someone else's job)."""
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(
                        Generation.kind,
                        Generation.prompt,
                        Generation.prompt_used,
                        Generation.model_requested,
                        Generation.status,
                        Generation.options,
                    ).where(Generation.id == generation_id, Generation.user_id == user_id)
                )
            ).first()
        if row is None:
            return None
        kind, prompt, used, model, status, options = row
        return JobText(
            generation_id,
            JobKind(kind),
            prompt,
            used,
            ModelId(model),
            GenerationStatus(status),
            ImageOptions(**(options or {})),
        )
