"""A user's generation from quota to delivery, so no promised image is lost and no failure is charged.

reserve + "pending" record happen in one transaction; the unit is released (in the same transaction
that closes the record) whenever no image reaches the user: provider failure, delivery failure,
cancellation. A crash leaves the row "pending"; `recover_interrupted` at start-up releases those.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update

from bot.catalog import MODELS
from bot.clock import Clock
from bot.db import SessionFactory
from bot.levels import Level
from bot.providers.base import ImageOptions, ModelId
from bot.services.generation import (
    FailureReason,
    GenerationFailed,
    GenerationRequest,
    GenerationResult,
    GenerationService,
    validate,
)
from bot.services.quota import QuotaService, QuotaStatus, Reservation
from models import Generation

log = logging.getLogger(__name__)


class JobStatus(StrEnum):
    DELIVERED = "delivered"
    LIMIT_REACHED = "limit_reached"
    FORBIDDEN = "forbidden"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class JobOutcome:
    status: JobStatus
    quota: QuotaStatus | None = None
    result: GenerationResult | None = None
    failure: GenerationFailed | None = None
    required_level: Level | None = None


# Sends the images to the user; raising means "not delivered" and the unit goes back.
Deliver = Callable[[GenerationResult, Reservation], Awaitable[None]]
# Called once the unit is reserved, just before the providers: the moment to show progress.
Started = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Interrupted:
    generation_id: int
    user_id: int | None
    chat_id: int | None
    prompt: str


class GenerationJobs:
    def __init__(
        self,
        sessions: SessionFactory,
        quota: QuotaService,
        generation: GenerationService,
        clock: Clock,
    ) -> None:
        self._sessions = sessions
        self._quota = quota
        self._generation = generation
        self._clock = clock

    async def run(
        self,
        *,
        user_id: int,
        chat_id: int | None,
        level: Level,
        prompt: str,
        model: ModelId,
        deliver: Deliver,
        options: ImageOptions | None = None,
        started: Started | None = None,
    ) -> JobOutcome:
        options = options or ImageOptions()
        required = MODELS[model].min_level
        if not level.allows(required):
            return JobOutcome(JobStatus.FORBIDDEN, required_level=required)
        request = GenerationRequest(prompt, model, level, options)
        problem = validate(request)
        if problem is not None:  # refused before a unit is taken or progress is shown
            return JobOutcome(
                JobStatus.FAILED, failure=GenerationFailed(model, FailureReason.INVALID_REQUEST, [], detail=problem)
            )

        started_at = self._clock.now()
        reserved = await self._reserve(user_id, chat_id, level, prompt, model, options.count, started_at)
        if reserved is None:
            return JobOutcome(JobStatus.LIMIT_REACHED, quota=await self._quota.status(user_id, level))
        reservation, generation_id = reserved

        delivered = False
        try:
            if started is not None:
                await started()
            outcome = await self._generation.generate(request)
            if isinstance(outcome, GenerationFailed):
                await self._finish(generation_id, user_id, reservation, options.count, outcome, "failed")
                if outcome.reason is FailureReason.FORBIDDEN_MODEL:
                    return JobOutcome(JobStatus.FORBIDDEN, required_level=required)
                return JobOutcome(JobStatus.FAILED, failure=outcome)
            await deliver(outcome, _after_partial(reservation, options.count, len(outcome.images)))
            delivered = True
            await self._finish(generation_id, user_id, reservation, options.count, outcome, "delivered")
            return JobOutcome(JobStatus.DELIVERED, result=outcome)
        except BaseException as exc:
            if not delivered:
                status = "interrupted" if not isinstance(exc, Exception) else "undelivered"
                await self._finish(generation_id, user_id, reservation, options.count, None, status, exc)
            raise

    async def _reserve(
        self,
        user_id: int,
        chat_id: int | None,
        level: Level,
        prompt: str,
        model: ModelId,
        units: int,
        now: datetime,
    ) -> tuple[Reservation, int] | None:
        async with self._sessions.begin() as session:
            reservation = await self._quota.reserve(user_id, level, units, session=session)
            if reservation is None:
                return None
            record = Generation(
                user_id=user_id,
                chat_id=chat_id,
                source="telegram",
                prompt=prompt,
                model_requested=model.value,
                attempts=[],
                status="pending",
                quota_day=reservation.day,
                created_at=now,
            )
            session.add(record)
            await session.flush()
            return reservation, record.id

    async def _finish(
        self,
        generation_id: int,
        user_id: int,
        reservation: Reservation,
        units: int,
        outcome: GenerationResult | GenerationFailed | None,
        status: str,
        exc: BaseException | None = None,
    ) -> None:
        """Close the record and give back every unit that did not become a delivered image."""
        delivered = len(outcome.images) if isinstance(outcome, GenerationResult) and status == "delivered" else 0
        values: dict[str, object] = {"status": status, "finished_at": self._clock.now()}
        if outcome is not None:
            values["attempts"] = [a.to_dict() for a in outcome.attempts]
            values["latency_ms"] = outcome.latency_ms
        if isinstance(outcome, GenerationResult):
            values["provider"] = outcome.first.provider
            values["model_used"] = outcome.first.model
            values["fallback"] = outcome.fallback_used
        if isinstance(outcome, GenerationFailed):
            values["error_class"] = outcome.error_class
        elif exc is not None:
            values["error_class"] = type(exc).__name__
        async with self._sessions.begin() as session:
            await session.execute(update(Generation).where(Generation.id == generation_id).values(**values))
            if units - delivered > 0:
                await self._quota.release(user_id, reservation.day, units - delivered, session=session)

    async def recover_interrupted(self) -> list[Interrupted]:
        """Release the units of generations a crash or restart left pending; return them for a notice."""
        recovered: list[Interrupted] = []
        async with self._sessions.begin() as session:
            rows = (await session.execute(select(Generation).where(Generation.status == "pending"))).scalars().all()
            for row in rows:
                row.status = "interrupted"
                row.error_class = "Restart"
                row.finished_at = self._clock.now()
                if row.user_id is not None and row.quota_day is not None:
                    await self._quota.release(row.user_id, row.quota_day, 1, session=session)
                recovered.append(Interrupted(row.id, row.user_id, row.chat_id, row.prompt))
        if recovered:
            log.info("released %d generation(s) left pending by the last run", len(recovered))
        return recovered


def _after_partial(reservation: Reservation, units: int, made: int) -> Reservation:
    """The reservation as it will stand once units that produced no image are given back."""
    if made >= units:
        return reservation
    return Reservation(day=reservation.day, used=reservation.used - (units - made), limit=reservation.limit)


async def record_unmetered(
    sessions: SessionFactory,
    clock: Clock,
    *,
    prompt: str,
    model: ModelId,
    outcome: GenerationResult | GenerationFailed,
    source: str,
) -> None:
    """Record a generation made outside Telegram (CLI, HTTP): no user, no quota."""
    ok = isinstance(outcome, GenerationResult)
    async with sessions.begin() as session:
        session.add(
            Generation(
                user_id=None,
                source=source,
                prompt=prompt,
                model_requested=model.value,
                provider=outcome.first.provider if ok else None,
                model_used=outcome.first.model if ok else None,
                fallback=outcome.fallback_used if ok else False,
                attempts=[a.to_dict() for a in outcome.attempts],
                status="delivered" if ok else "failed",
                error_class=None if ok else outcome.error_class,
                latency_ms=outcome.latency_ms,
                created_at=clock.now(),
                finished_at=clock.now(),
            )
        )
