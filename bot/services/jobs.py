"""Generation jobs in the database: the row is the job's truth, the queue only says "there is work".

`submit` (front end) checks level and limit, reserves the units and writes the row in one
transaction. `claim` (worker) takes the most deserving queued job under a lease that the worker
renews while it runs; `settle_sent` closes a delivered job in the same write that records its
message id, `finish` closes any other; both release every unit that did not become a delivered
image, and only if the worker still holds the lease (a worker that lost it cannot settle twice).
`recover` puts jobs whose holder died back on the queue, and refunds only those too old to resume.
Nothing here knows Telegram.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.catalog import MODELS, ModelId
from bot.clock import Clock
from bot.config import Settings
from bot.db import SessionFactory
from bot.levels import Level
from bot.providers.base import ImageOptions
from bot.services.generation import (
    FailureReason,
    GenerationFailed,
    GenerationRequest,
    GenerationResult,
    check_request,
)
from bot.services.held import held_by
from bot.services.quota import QuotaService, QuotaStatus
from models import ACTIVE, UNFINISHED, Generation, GenerationStatus, JobKind, User

log = logging.getLogger(__name__)

FINAL = frozenset(GenerationStatus) - frozenset(UNFINISHED)


class SubmitStatus(StrEnum):
    QUEUED = "queued"  # on the queue now
    WAITING = "waiting"  # behind the user's running jobs; queued when one of them ends
    LIMIT_REACHED = "limit_reached"
    FORBIDDEN = "forbidden"
    INVALID = "invalid"
    TOO_MANY = "too_many"  # running and waiting jobs are at the user's maximum


@dataclass(frozen=True, slots=True)
class Submitted:
    status: SubmitStatus
    generation_id: int | None = None
    quota: QuotaStatus | None = None
    required_level: Level | None = None
    detail: str = ""
    ahead: int = 0  # the user's own jobs before this one (running or waiting)

    @property
    def accepted(self) -> bool:
        return self.status in (SubmitStatus.QUEUED, SubmitStatus.WAITING)


@dataclass(frozen=True, slots=True)
class JobView:
    """What a worker needs of a row; services exchange this, not ORM objects."""

    id: int
    user_id: int | None
    chat_id: int | None
    prompt: str
    model: ModelId
    level: Level
    options: ImageOptions
    units: int
    quota_day: date | None
    locale: str | None
    status_message_id: int | None
    enqueued_at: datetime | None
    attempt: int
    kind: JobKind = JobKind.GENERATE
    parent_id: int | None = None  # the delivered generation this job continues
    input_file_id: str | None = None  # Telegram file_id of the photo an edit, upscale or describe works on
    inline_message_id: str | None = None  # inline mode: the message the image replaces (bot/inline_delivery.py)
    source: str = "telegram"  # "api": the images go to the result store (bot/services/api_files.py), not a chat
    prompt_used: str | None = None  # fixed for this job already (prompt help's rewrite, or the user's own words)

    @property
    def request(self) -> GenerationRequest:
        return GenerationRequest(self.prompt, self.model, self.level, self.options)


@dataclass(frozen=True, slots=True)
class Settled:
    """A job closed by `finish`, `cancel` or `recover`: who to tell, and which jobs may start now."""

    generation_id: int
    status: GenerationStatus
    user_id: int | None
    chat_id: int | None
    locale: str | None
    status_message_id: int | None
    released: int
    promoted: list[int] = field(default_factory=list)
    inline_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class KeepStep:
    """Something stored with a delivery, in its settling transaction (see `settle_sent`)."""

    failed: str  # what the log says when it could not be stored
    write: Callable[[AsyncSession], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class InLine:
    """A queued job as the line shows it: who to tell, and where their status message is."""

    generation_id: int
    chat_id: int
    status_message_id: int
    model: ModelId
    locale: str | None
    enqueued_at: datetime | None


@dataclass(frozen=True, slots=True)
class Recovered:
    requeued: list[int]  # back on the queue: kick one message each
    refunded: list[Settled]  # too old to resume: units back, the user is told


class GenerationJobs:
    def __init__(self, sessions: SessionFactory, quota: QuotaService, clock: Clock, settings: Settings) -> None:
        self._sessions = sessions
        self._quota = quota
        self._clock = clock
        self._settings = settings

    # --- front end ---------------------------------------------------------------------------

    async def submit(
        self,
        *,
        user_id: int,
        chat_id: int | None,
        level: Level,
        prompt: str,
        model: ModelId,
        options: ImageOptions | None = None,
        locale: str | None = None,
        kind: JobKind = JobKind.GENERATE,
        parent_id: int | None = None,
        input_file_id: str | None = None,
        charge: bool = True,
        prompt_used: str | None = None,
        inline_message_id: str | None = None,
        source: str = "telegram",
    ) -> Submitted:
        """Validate, check the level, the caps and the limit; reserve and write the row, or take nothing.

        `charge=False` (a free job, e.g. describe with DESCRIBE_FREE=1) reserves no unit and keeps none.
        `prompt_used`: the prompt the job draws from, fixed now (prompt help is then off for it)."""
        options = options or ImageOptions()
        refused = check_request(GenerationRequest(prompt, model, level, options))
        if refused is not None:  # refused before a unit is taken; the worker trusts what passed
            if refused.reason is FailureReason.FORBIDDEN_MODEL:
                return Submitted(SubmitStatus.FORBIDDEN, required_level=MODELS[model].min_level)
            return Submitted(SubmitStatus.INVALID, detail=refused.detail)
        cap = self._settings.inflight_cap_for(level.value)
        async with self._sessions.begin() as session:
            # One user's prompts queue up behind each other: lock their row (PostgreSQL; SQLite
            # write transactions are serial already) so two prompts cannot both see a free slot.
            await session.execute(select(User.id).where(User.id == user_id).with_for_update())
            active, waiting = await self._counts(session, user_id)
            if cap and active >= cap and waiting >= self._settings.queue_max_per_user:
                return Submitted(SubmitStatus.TOO_MANY, ahead=active + waiting)
            status = GenerationStatus.WAITING if cap and (active >= cap or waiting) else GenerationStatus.QUEUED
            reservation = await self._quota.reserve(user_id, level, options.count, session=session) if charge else None
            if charge and reservation is None:
                await session.rollback()
                return Submitted(SubmitStatus.LIMIT_REACHED, quota=await self._quota.status(user_id, level))
            now = self._clock.now()
            record = Generation(
                user_id=user_id,
                chat_id=chat_id,
                source=source,
                prompt=prompt,
                kind=kind,
                parent_id=parent_id,
                input_file_id=input_file_id,
                prompt_used=prompt_used,
                inline_message_id=inline_message_id,
                model_requested=model.value,
                attempts=[],
                status=status,
                quota_day=reservation.day if reservation is not None else None,
                created_at=now,
                units=options.count if charge else 0,
                options=_options_dict(options),
                level=level.value,
                priority=level.rank,
                locale=locale,
                enqueued_at=now if status is GenerationStatus.QUEUED else None,
            )
            session.add(record)
            await session.flush()
            return Submitted(SubmitStatus(status.value), record.id, ahead=active + waiting)

    async def set_status_message(self, generation_id: int, message_id: int) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(Generation).where(Generation.id == generation_id).values(status_message_id=message_id)
            )

    async def cancel_pending(self, user_id: int) -> list[Settled]:
        """Withdraw the user's jobs no worker has taken yet; their units come back."""
        async with self._sessions.begin() as session:
            rows = (
                await session.execute(
                    select(Generation)
                    .where(
                        Generation.user_id == user_id,
                        Generation.status.in_([GenerationStatus.WAITING, GenerationStatus.QUEUED]),
                    )
                    .with_for_update()
                )
            ).scalars()
            settled = []
            for row in rows:
                settled.append(await self._close(session, row, GenerationStatus.CANCELLED, "Cancelled", 0))
            return settled

    async def withdraw(self, generation_id: int) -> Settled | None:
        """Undo a submit whose job could not be put on the queue: nothing is charged."""
        async with self._sessions.begin() as session:
            row = await session.get(Generation, generation_id, with_for_update=True)
            if row is None or row.status not in (GenerationStatus.QUEUED, GenerationStatus.WAITING):
                return None
            return await self._close(session, row, GenerationStatus.CANCELLED, "QueueUnavailable", 0)

    # --- worker --------------------------------------------------------------------------------

    async def claim(self, owner: str, lease: timedelta, preferred: int | None = None) -> JobView | Settled | None:
        """Take the most deserving job under a lease: a JobView to run, a Settled that was given up
        after too many attempts (tell its user), or None when nothing is waiting for a worker.

        Subscribers' jobs go first, but a user's job is taken once `priority_max_skip` later
        subscriber jobs have started ahead of it. `preferred` (the id the queue message carried)
        only breaks ties.
        """
        now = self._clock.now()
        async with self._sessions.begin() as session:
            row = await self._next(session, now, preferred)
            if row is None:
                return None
            if row.sent_message_id is not None:  # delivered; only the final write was lost
                return await self._close(session, row, GenerationStatus.DELIVERED, None, row.units)
            if row.job_attempts >= self._settings.job_max_attempts:
                log.error("generation %s given up after %d attempts", row.id, row.job_attempts)
                return await self._close(session, row, GenerationStatus.FAILED, "DeadLetter", 0)
            row.status = GenerationStatus.RUNNING
            row.lease_owner = owner
            row.lease_until = now + lease
            row.job_attempts += 1
            row.started_at = row.started_at or now
            return _view(row)

    async def renew(self, generation_id: int, owner: str, lease: timedelta) -> bool:
        """Extend the lease; False when another worker has taken the job (this one must stop)."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Generation).where(held_by(generation_id, owner)).values(lease_until=self._clock.now() + lease)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def put_back(self, generation_id: int, owner: str) -> bool:
        """A worker stopping mid-job hands it back untouched: queued again, the attempt not counted."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Generation)
                .where(held_by(generation_id, owner), Generation.sent_message_id.is_(None))
                .values(
                    status=GenerationStatus.QUEUED,
                    lease_owner=None,
                    lease_until=None,
                    enqueued_at=self._clock.now(),
                    job_attempts=Generation.job_attempts - 1,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def settle_sent(
        self,
        generation_id: int,
        owner: str,
        message_id: int,
        outcome: GenerationResult | None,
        *,
        delivered: int,
        keep: Sequence[KeepStep] = (),
    ) -> tuple[Settled | None, bool]:
        """Telegram accepted the images: record the message id and close the job, in one write.

        From this write on the job is never refunded or re-run; the units of images that did not go
        out are released in it. `keep` steps store what the result buttons and /history need in the
        same transaction, each under a savepoint: one that fails is logged and dropped, never a reason
        to lose the record of a delivery. Returns what was settled and whether this worker recorded the
        delivery; (None, False) when another worker holds the job (it settles it).
        """
        async with self._sessions.begin() as session:
            row = await session.get(Generation, generation_id, with_for_update=True)
            if row is None or row.lease_owner != owner or row.status != GenerationStatus.RUNNING:
                log.warning("generation %s: lease lost before recording the delivery; left to its new holder",
                            generation_id)  # fmt: skip
                return None, False
            marked = row.sent_message_id is None
            if marked:
                await self._mark(session, row, message_id, delivered)
            if outcome is not None:
                _record_outcome(row, outcome)
            settled = await self._close(session, row, GenerationStatus.DELIVERED, None, delivered)
            # After the close is flushed: a step rolled back to its savepoint cannot undo any of it.
            for step in keep:
                try:
                    async with session.begin_nested():
                        await step.write(session)
                except Exception as exc:  # the delivery is recorded whatever happens to the extras
                    log.warning("generation %s: %s (%s)", generation_id, step.failed, type(exc).__name__)
            return settled, marked

    async def finish(
        self,
        generation_id: int,
        owner: str,
        status: GenerationStatus,
        outcome: GenerationResult | GenerationFailed | None,
        *,
        delivered: int = 0,
        error_class: str | None = None,
    ) -> Settled | None:
        """Close a job this worker holds; None if it lost the lease (someone else settles it)."""
        async with self._sessions.begin() as session:
            row = await session.get(Generation, generation_id, with_for_update=True)
            if row is None or row.lease_owner != owner or row.status != GenerationStatus.RUNNING:
                log.warning("generation %s: lease lost before finishing; left to its new holder", generation_id)
                return None
            if outcome is not None:
                _record_outcome(row, outcome)
            if isinstance(outcome, GenerationFailed):
                error_class = error_class or outcome.error_class
                refusal = outcome.refusal if status is GenerationStatus.REFUSED else None
                if refusal is not None:  # who refused, and why in their words: /user and /stats read it
                    row.provider = refusal.provider
                    row.model_used = refusal.model or None
                    row.refusal_reason = refusal.detail[:300] or refusal.outcome
            return await self._close(session, row, status, error_class, delivered)

    # --- recovery ------------------------------------------------------------------------------

    async def recover(self, *, take_over: bool, stale_after: timedelta | None = None) -> Recovered:
        """Unfinished jobs nobody is working on: resume the young ones, refund the old ones.

        `take_over`: this is the only process (embedded start-up), so every lease is a dead one.
        Otherwise only expired leases are taken, plus queued jobs not put on the queue for
        `stale_after` (their message may have been lost between commit and enqueue).
        """
        now = self._clock.now()
        too_old = now - timedelta(seconds=self._settings.recovery_max_age)
        requeued: list[int] = []
        refunded: list[Settled] = []
        async with self._sessions.begin() as session:
            # Only rows this sweep will change are locked (and locked rows skipped): a queued job
            # locked by the sweep would be skipped by a claim, spending its message on nothing.
            lapsed = (Generation.status == GenerationStatus.RUNNING) & (Generation.lease_until < now)
            lost = Generation.status == GenerationStatus.QUEUED
            if take_over:
                candidates: ColumnElement[bool] = Generation.status.in_(
                    [GenerationStatus.QUEUED, GenerationStatus.RUNNING]
                )
            elif stale_after is not None:
                stale = Generation.enqueued_at.is_(None) | (Generation.enqueued_at < now - stale_after)
                candidates = lapsed | (lost & stale)
            else:
                candidates = lapsed
            rows = (
                await session.execute(
                    select(Generation).where(candidates).order_by(Generation.id).with_for_update(skip_locked=True)
                )
            ).scalars()
            users: set[int] = set()
            for row in rows:
                held = row.status == GenerationStatus.RUNNING and row.lease_until is not None
                if held and not take_over and row.lease_until is not None and row.lease_until > now:
                    continue  # a live worker has it
                lost_message = row.status == GenerationStatus.QUEUED and (
                    take_over
                    or (stale_after is not None and (row.enqueued_at is None or row.enqueued_at < now - stale_after))
                )
                if row.status == GenerationStatus.QUEUED and not lost_message:
                    continue
                if row.sent_message_id is not None:
                    await self._close(session, row, GenerationStatus.DELIVERED, None, row.units)
                elif row.created_at < too_old:
                    refunded.append(await self._close(session, row, GenerationStatus.INTERRUPTED, "Restart", 0))
                else:
                    row.status = GenerationStatus.QUEUED
                    row.lease_owner = None
                    row.lease_until = None
                    row.enqueued_at = now
                    requeued.append(row.id)
                if row.user_id is not None:
                    users.add(row.user_id)
            # Waiting jobs whose running ones were just refunded, or that nothing is ahead of any more.
            stuck = select(Generation.user_id).where(Generation.status == GenerationStatus.WAITING).distinct()
            users.update(uid for uid in (await session.execute(stuck)).scalars() if uid is not None)
            for user_id in sorted(users):
                requeued.extend(await self._promote(session, user_id))
        if requeued or refunded:
            log.info("recovery: %d job(s) back on the queue, %d refunded as too old", len(requeued), len(refunded))
        return Recovered(requeued, refunded)

    # --- looking ---------------------------------------------------------------------------------

    async def depth(self) -> int:
        """Jobs waiting for a worker (queued, not running)."""
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(Generation).where(Generation.status == GenerationStatus.QUEUED)
            )
            return int(count or 0)

    async def line(self, limit: int = 500) -> list[InLine]:
        """Queued jobs in the order workers will take them (priority first, then age)."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(
                    Generation.id,
                    Generation.chat_id,
                    Generation.status_message_id,
                    Generation.model_requested,
                    Generation.locale,
                    Generation.enqueued_at,
                )
                .where(Generation.status == GenerationStatus.QUEUED)
                .order_by(Generation.priority.desc(), Generation.id)
                .limit(limit)
            )
            return [
                InLine(gid, chat, msg, ModelId(model), locale, enqueued)
                for gid, chat, msg, model, locale, enqueued in rows
                if chat is not None and msg is not None
            ]

    async def finished_since(self, since: datetime) -> int:
        """How many jobs ended after `since`: the recent pace, for an estimate of the wait."""
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Generation)
                .where(Generation.finished_at >= since, Generation.started_at.is_not(None))
            )
            return int(count or 0)

    async def find(self, generation_id: int) -> JobView | None:
        """One generation as a view (whose it is, its prompt): what a button under a result acts on."""
        async with self._sessions() as session:
            row = await session.get(Generation, generation_id)
            return _view(row) if row is not None else None

    async def find_sent(self, chat_id: int, message_id: int) -> JobView | None:
        """The generation whose (first) image is that message in that chat, if the bot sent it."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(Generation)
                .where(Generation.chat_id == chat_id, Generation.sent_message_id == message_id)
                .order_by(Generation.id.desc())
                .limit(1)
            )
            return _view(row) if row is not None else None

    async def for_inline_message(self, inline_message_id: str) -> int | None:
        """The job already started for an inline message: a chosen result delivered twice starts one."""
        async with self._sessions() as session:
            found = await session.scalar(select(Generation.id).where(Generation.inline_message_id == inline_message_id))
            return int(found) if found is not None else None

    async def status(self, generation_id: int) -> GenerationStatus | None:
        async with self._sessions() as session:
            value = await session.scalar(select(Generation.status).where(Generation.id == generation_id))
            return GenerationStatus(value) if value is not None else None

    # --- inside ------------------------------------------------------------------------------------

    async def _counts(self, session: AsyncSession, user_id: int) -> tuple[int, int]:
        rows = await session.execute(
            select(Generation.status, func.count())
            .where(Generation.user_id == user_id, Generation.status.in_(UNFINISHED))
            .group_by(Generation.status)
        )
        counts = {status: count for status, count in rows}
        active = sum(counts.get(s, 0) for s in ACTIVE)
        return active, counts.get(GenerationStatus.WAITING, 0)

    async def _next(self, session: AsyncSession, now: datetime, preferred: int | None) -> Generation | None:
        """Lock and return the job to run. Only that row is locked: a row locked while merely
        considered would be skipped by a concurrent claim, whose message would then be spent on
        nothing and the job left without one."""
        claimable = (Generation.status == GenerationStatus.QUEUED) | (
            (Generation.status == GenerationStatus.RUNNING) & (Generation.lease_until < now)
        )
        # A user's job that `priority_max_skip` subscriber jobs have overtaken goes next.
        oldest_low = (
            await session.execute(
                select(Generation.id, Generation.enqueued_at)
                .where(claimable, Generation.priority == 0)
                .order_by(Generation.id)
                .limit(1)
            )
        ).first()
        if oldest_low is not None and oldest_low.enqueued_at is not None:
            overtaken = await session.scalar(
                select(func.count())
                .select_from(Generation)
                .where(
                    Generation.priority > 0,
                    Generation.id > oldest_low.id,
                    Generation.started_at.is_not(None),
                    Generation.started_at >= oldest_low.enqueued_at,
                )
            )
            if (overtaken or 0) >= self._settings.priority_max_skip:
                row = await self._lock(session, claimable, Generation.id == oldest_low.id)
                if row is not None:
                    return row
        order: list[ColumnElement[Any]] = [Generation.priority.desc()]
        if preferred is not None:
            order.append((Generation.id != preferred).asc())  # the message's own job, among equals
        return await self._lock(session, claimable, None, *order, Generation.id)

    async def _lock(
        self,
        session: AsyncSession,
        claimable: ColumnElement[bool],
        which: ColumnElement[bool] | None,
        *order: Any,
    ) -> Generation | None:
        query = select(Generation).where(claimable).with_for_update(skip_locked=True).limit(1)
        if which is not None:
            query = query.where(which)
        if order:
            query = query.order_by(*order)
        return (await session.execute(query)).scalar_one_or_none()

    async def _mark(self, session: AsyncSession, row: Generation, message_id: int, delivered: int) -> None:
        """The sent message id, and the units of images that did not go out released."""
        row.sent_message_id = message_id
        unused = row.units - delivered
        if unused > 0 and row.user_id is not None and row.quota_day is not None:
            await self._quota.release(row.user_id, row.quota_day, unused, session=session)
            row.units -= unused

    async def _close(
        self,
        session: AsyncSession,
        row: Generation,
        status: GenerationStatus,
        error_class: str | None,
        delivered: int,
    ) -> Settled:
        """Final status, units that made no image released, the user's next waiting job promoted."""
        if row.user_id is not None:
            # Serialise with `submit` for this user: a prompt submitted while this job ends must
            # either see it ended (and be queued) or be seen waiting here (and be promoted).
            await session.execute(select(User.id).where(User.id == row.user_id).with_for_update())
        row.status = status
        row.finished_at = self._clock.now()
        row.lease_owner = None
        row.lease_until = None
        if error_class is not None:
            row.error_class = error_class
        released = max(row.units - delivered, 0)
        if released and row.user_id is not None and row.quota_day is not None:
            await self._quota.release(row.user_id, row.quota_day, released, session=session)
        await session.flush()
        promoted = await self._promote(session, row.user_id) if row.user_id is not None else []
        return Settled(
            row.id,
            status,
            row.user_id,
            row.chat_id,
            row.locale,
            row.status_message_id,
            released,
            promoted,
            inline_message_id=row.inline_message_id,
        )

    async def _promote(self, session: AsyncSession, user_id: int) -> list[int]:
        """Queue the user's waiting jobs that now fit under their in-flight cap."""
        level = await session.scalar(
            select(Generation.level)
            .where(Generation.user_id == user_id, Generation.status == GenerationStatus.WAITING)
            .limit(1)
        )
        if level is None:
            return []
        cap = self._settings.inflight_cap_for(level)
        active, _waiting = await self._counts(session, user_id)
        room = None if not cap else max(cap - active, 0)
        if room == 0:
            return []
        query = (
            select(Generation)
            .where(Generation.user_id == user_id, Generation.status == GenerationStatus.WAITING)
            .order_by(Generation.id)
        )
        if room is not None:
            query = query.limit(room)
        now = self._clock.now()
        promoted = []
        for row in (await session.execute(query)).scalars():
            row.status = GenerationStatus.QUEUED
            row.enqueued_at = now
            promoted.append(row.id)
        await session.flush()
        return promoted


def _record_outcome(row: Generation, outcome: GenerationResult | GenerationFailed) -> None:
    """What the chain did: every attempt, the latency, and for a result who made it."""
    row.attempts = [a.to_dict() for a in outcome.attempts]
    row.latency_ms = outcome.latency_ms
    if isinstance(outcome, GenerationResult):
        row.provider = outcome.first.provider
        row.model_used = outcome.first.model
        row.fallback = outcome.fallback_used


def _options_dict(options: ImageOptions) -> dict[str, Any]:
    return {k: v for k, v in asdict(options).items() if v is not None}


def _view(row: Generation) -> JobView:
    return JobView(
        id=row.id,
        user_id=row.user_id,
        chat_id=row.chat_id,
        prompt=row.prompt,
        model=ModelId(row.model_requested),
        level=Level(row.level),
        options=ImageOptions(**(row.options or {})),
        units=row.units,
        quota_day=row.quota_day,
        locale=row.locale,
        status_message_id=row.status_message_id,
        enqueued_at=row.enqueued_at,
        attempt=row.job_attempts,
        kind=JobKind(row.kind),
        parent_id=row.parent_id,
        input_file_id=row.input_file_id,
        inline_message_id=row.inline_message_id,
        source=row.source,
        prompt_used=row.prompt_used,
    )
