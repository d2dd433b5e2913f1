"""Jobs in the database: reserved once, charged only for delivered images, fair between users,
never run by two workers at once, never lost to a crash."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.catalog import ModelId
from bot.clock import ManualClock
from bot.db import SessionFactory
from bot.levels import Level
from bot.providers.base import ErrorKind, ImageOptions
from bot.services.gallery import GalleryService, SentImage
from bot.services.generation import GenerationService
from bot.services.jobs import GenerationJobs, JobView, KeepStep, Settled, SubmitStatus
from bot.services.quota import QuotaService
from bot.services.users import Profile, UserService
from models import Generation, GenerationStatus
from tests.conftest import make_settings
from tests.support import default_stubs, run_job

LEASE = timedelta(seconds=60)


async def _jobs(sessions: SessionFactory, clock: ManualClock, **env: Any) -> tuple[GenerationJobs, QuotaService]:
    env.setdefault("DAILY_LIMIT_USER", 5)
    settings = make_settings("sqlite+aiosqlite://", **env)
    users = UserService(sessions, clock, frozenset())
    for uid in (7, 8, 9):
        await users.register(Profile(id=uid, first_name=f"U{uid}"))
    quota = QuotaService(sessions, settings, clock)
    return GenerationJobs(sessions, quota, clock, settings), quota


def _ask(user_id: int = 7, level: Level = Level.USER, **kw: Any) -> dict[str, Any]:
    base = {"user_id": user_id, "chat_id": user_id, "level": level, "prompt": "a fox", "model": ModelId.GEMINI_FLASH}
    return base | kw


async def _row(sessions: SessionFactory, generation_id: int) -> Generation:
    async with sessions() as s:
        row = await s.get(Generation, generation_id)
        assert row is not None
        return row


async def test_a_delivered_job_keeps_its_unit_and_a_failed_one_releases_it(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    jobs, quota = await _jobs(sessions, clock)
    stubs = default_stubs()
    generation = GenerationService(list(stubs.values()))
    submitted, status = await run_job(jobs, generation, **_ask())
    assert status is GenerationStatus.DELIVERED and (await quota.status(7, Level.USER)).used == 1
    row = await _row(sessions, submitted.generation_id or 0)
    assert (row.provider, row.units, row.sent_message_id, row.lease_owner) == ("gemini", 1, 1000 + row.id, None)

    for stub in stubs.values():
        stub.outcomes = [ErrorKind.UNAVAILABLE]
    _, status = await run_job(jobs, generation, **_ask())
    assert status is GenerationStatus.FAILED and (await quota.status(7, Level.USER)).used == 1


async def test_refusals_take_nothing(sessions: SessionFactory, clock: ManualClock) -> None:
    jobs, _ = await _jobs(sessions, clock, DAILY_LIMIT_USER=1, INFLIGHT_CAP="user:0")
    assert (await jobs.submit(**_ask(model=ModelId.FLUX_PRO))).status is SubmitStatus.FORBIDDEN
    assert (await jobs.submit(**_ask(prompt="  "))).status is SubmitStatus.INVALID
    assert (await jobs.submit(**_ask())).status is SubmitStatus.QUEUED
    refused = await jobs.submit(**_ask())
    assert refused.status is SubmitStatus.LIMIT_REACHED and refused.quota is not None and refused.quota.used == 1
    async with sessions() as s:
        assert len((await s.execute(select(Generation))).scalars().all()) == 1


async def test_prompts_beyond_the_in_flight_cap_wait_then_start_in_order(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    jobs, quota = await _jobs(sessions, clock, INFLIGHT_CAP="user:1", QUEUE_MAX_PER_USER=2)
    first = await jobs.submit(**_ask())
    second = await jobs.submit(**_ask())
    third = await jobs.submit(**_ask())
    fourth = await jobs.submit(**_ask())
    assert [s.status for s in (first, second, third, fourth)] == [
        SubmitStatus.QUEUED,
        SubmitStatus.WAITING,
        SubmitStatus.WAITING,
        SubmitStatus.TOO_MANY,
    ]
    assert (await quota.status(7, Level.USER)).used == 3  # the refused one took nothing
    job = await jobs.claim("w1", LEASE)
    assert isinstance(job, JobView) and job.id == first.generation_id
    assert await jobs.claim("w2", LEASE) is None  # the waiting ones are not on the queue yet
    settled = await jobs.finish(job.id, "w1", GenerationStatus.DELIVERED, None, delivered=1)
    assert settled is not None and settled.promoted == [second.generation_id]
    assert (await _row(sessions, second.generation_id or 0)).status == GenerationStatus.QUEUED


async def test_cancel_withdraws_waiting_and_queued_jobs_but_not_running_ones(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    jobs, quota = await _jobs(sessions, clock, INFLIGHT_CAP="user:1", QUEUE_MAX_PER_USER=3)
    running = await jobs.submit(**_ask())
    await jobs.submit(**_ask(options=ImageOptions(count=2)))
    await jobs.submit(**_ask())
    assert isinstance(await jobs.claim("w1", LEASE), JobView)
    withdrawn = await jobs.cancel_pending(7)
    assert sorted(s.released for s in withdrawn) == [1, 2]
    assert (await quota.status(7, Level.USER)).used == 1
    assert (await _row(sessions, running.generation_id or 0)).status == GenerationStatus.RUNNING


async def test_a_job_is_held_by_one_worker_until_its_lease_runs_out(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    jobs, quota = await _jobs(sessions, clock)
    submitted = await jobs.submit(**_ask())
    assert isinstance(await jobs.claim("w1", LEASE), JobView)
    assert await jobs.claim("w2", LEASE) is None
    clock.advance(timedelta(seconds=30))
    assert await jobs.renew(submitted.generation_id or 0, "w1", LEASE)  # still alive: 60 s more
    clock.advance(timedelta(seconds=45))
    assert await jobs.claim("w2", LEASE) is None
    clock.advance(timedelta(seconds=20))  # w1 died: no renewal for 65 s
    taken = await jobs.claim("w2", LEASE)
    assert isinstance(taken, JobView) and taken.attempt == 2
    assert not await jobs.renew(taken.id, "w1", LEASE)  # w1 woke up: it must stop
    assert await jobs.finish(taken.id, "w1", GenerationStatus.FAILED, None) is None  # and cannot settle
    settled = await jobs.finish(taken.id, "w2", GenerationStatus.DELIVERED, None, delivered=1)
    assert settled is not None and settled.released == 0 and (await quota.status(7, Level.USER)).used == 1


async def test_a_job_that_keeps_dying_is_given_up_and_refunded(sessions: SessionFactory, clock: ManualClock) -> None:
    jobs, quota = await _jobs(sessions, clock, JOB_MAX_ATTEMPTS=2)
    await jobs.submit(**_ask())
    for _ in range(2):
        assert isinstance(await jobs.claim("w", LEASE), JobView)
        clock.advance(LEASE + timedelta(seconds=1))
    given_up = await jobs.claim("w", LEASE)
    assert isinstance(given_up, Settled) and given_up.status is GenerationStatus.FAILED and given_up.released == 1
    assert (await quota.status(7, Level.USER)).used == 0
    assert await jobs.claim("w", LEASE) is None


async def test_a_worker_stopping_puts_its_job_back_without_counting_the_attempt(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    jobs, _ = await _jobs(sessions, clock)
    await jobs.submit(**_ask())
    job = await jobs.claim("w1", LEASE)
    assert isinstance(job, JobView)
    assert await jobs.put_back(job.id, "w1")
    again = await jobs.claim("w2", LEASE)
    assert isinstance(again, JobView) and again.id == job.id and again.attempt == 1


async def test_subscribers_go_first_but_a_user_waits_for_at_most_n_of_them(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    jobs, _ = await _jobs(sessions, clock, PRIORITY_MAX_SKIP=2, INFLIGHT_CAP="user:0,subscriber:0")
    user_job = await jobs.submit(**_ask(7))
    subs = [await jobs.submit(**_ask(8, Level.SUBSCRIBER)) for _ in range(4)]
    order = []
    for _ in range(5):
        job = await jobs.claim("w", LEASE)
        assert isinstance(job, JobView)
        order.append(job.id)
    ids = [s.generation_id for s in subs]
    assert order == [ids[0], ids[1], user_job.generation_id, ids[2], ids[3]]


async def test_the_message_s_own_job_goes_first_among_equals(sessions: SessionFactory, clock: ManualClock) -> None:
    jobs, _ = await _jobs(sessions, clock)
    a = await jobs.submit(**_ask(7))
    b = await jobs.submit(**_ask(8))
    job = await jobs.claim("w", LEASE, preferred=b.generation_id)
    assert isinstance(job, JobView) and job.id == b.generation_id and a.generation_id != b.generation_id


async def test_embedded_start_up_resumes_young_jobs_and_refunds_old_ones(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    jobs, quota = await _jobs(sessions, clock, RECOVERY_MAX_AGE=900)
    old = await jobs.submit(**_ask(7))
    clock.advance(timedelta(minutes=20))
    young = await jobs.submit(**_ask(8))
    running = await jobs.claim("dead-process", LEASE, preferred=young.generation_id)
    assert isinstance(running, JobView)
    delivered = await jobs.submit(**_ask(9))
    sent = await jobs.claim("dead-process", LEASE, preferred=delivered.generation_id)
    assert isinstance(sent, JobView)
    async with sessions.begin() as s:  # a row an older version left: the message id written, not the close
        await s.execute(update(Generation).where(Generation.id == sent.id).values(sent_message_id=555))

    result = await jobs.recover(take_over=True)
    assert result.requeued == [young.generation_id]
    assert [s.generation_id for s in result.refunded] == [old.generation_id]
    assert (await quota.status(7, Level.USER)).used == 0  # refunded
    assert (await quota.status(8, Level.USER)).used == 1  # resumed, still reserved
    assert (await quota.status(9, Level.USER)).used == 1  # delivered: never refunded
    assert (await _row(sessions, sent.id)).status == GenerationStatus.DELIVERED
    assert (await jobs.recover(take_over=True)).requeued == [young.generation_id]  # queued again, same job


async def test_a_periodic_sweep_leaves_live_leases_alone(sessions: SessionFactory, clock: ManualClock) -> None:
    jobs, _ = await _jobs(sessions, clock)
    live = await jobs.submit(**_ask(7))
    assert isinstance(await jobs.claim("alive", LEASE, preferred=live.generation_id), JobView)
    queued = await jobs.submit(**_ask(8))
    assert (await jobs.recover(take_over=False, stale_after=timedelta(minutes=10))).requeued == []
    clock.advance(timedelta(minutes=11))  # the lease lapsed; the queued job's message looks lost
    result = await jobs.recover(take_over=False, stale_after=timedelta(minutes=10))
    assert result.requeued == [live.generation_id, queued.generation_id]


async def test_old_pending_rows_from_the_previous_version_are_queued_jobs(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    jobs, _ = await _jobs(sessions, clock)
    submitted = await jobs.submit(**_ask())
    async with sessions.begin() as s:
        await s.execute(update(Generation).values(options=None))
    job = await jobs.claim("w", LEASE)
    assert isinstance(job, JobView) and job.id == submitted.generation_id and job.options == ImageOptions()


async def test_a_waiting_job_with_nothing_ahead_of_it_is_queued_by_the_sweep(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    jobs, _ = await _jobs(sessions, clock, INFLIGHT_CAP="user:1")
    first = await jobs.submit(**_ask())
    second = await jobs.submit(**_ask())
    assert second.status is SubmitStatus.WAITING
    # What a submit racing a finish could leave behind: the job ahead ended, nobody promoted this one.
    async with sessions.begin() as s:
        await s.execute(update(Generation).where(Generation.id == first.generation_id).values(status="delivered"))
    assert (await jobs.recover(take_over=False)).requeued == [second.generation_id]
    assert (await _row(sessions, second.generation_id or 0)).status == GenerationStatus.QUEUED


async def _settle_with_a_failing_step(
    sessions: SessionFactory, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A keep step that wrote and then failed is rolled back to its savepoint; the delivery, the
    release of the unit of the image that did not go, and the other step are written."""
    jobs, quota = await _jobs(sessions, clock)
    submitted = await jobs.submit(**_ask(options=ImageOptions(count=2)))
    job = await jobs.claim("w1", LEASE, preferred=submitted.generation_id)
    assert isinstance(job, JobView)
    gallery = GalleryService(sessions, clock)
    image = SentImage(position=0, chat_id=7, message_id=321, kind="photo", file_id="f0", file_unique_id="u0")

    async def half_written(session: AsyncSession) -> None:
        await session.execute(update(Generation).where(Generation.id == job.id).values(prompt_used="half"))
        raise RuntimeError("disk full")

    steps = [
        KeepStep("the broken one", half_written),
        KeepStep("images not kept", lambda session: gallery.record(job.id, [image], session=session)),
    ]
    with caplog.at_level(logging.WARNING, "bot.services.jobs"):
        settled, marked = await jobs.settle_sent(job.id, "w1", 321, None, delivered=1, keep=steps)
    assert marked and settled is not None and settled.status is GenerationStatus.DELIVERED
    row = await _row(sessions, job.id)
    assert (row.status, row.sent_message_id, row.units, row.prompt_used) == (GenerationStatus.DELIVERED, 321, 1, None)
    assert (await quota.status(7, Level.USER)).used == 1  # two reserved, one delivered
    stored = await gallery.result(job.id)
    assert stored is not None and [i.file_id for i in stored.images] == ["f0"]
    assert [r.getMessage() for r in caplog.records] == [f"generation {job.id}: the broken one (RuntimeError)"]
    # Recorded once: a second settle (a confused worker) finds the lease gone and changes nothing.
    assert await jobs.settle_sent(job.id, "w1", 999, None, delivered=1) == (None, False)


async def test_settling_a_delivery_keeps_what_it_can_in_one_transaction_sqlite(
    sessions: SessionFactory, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    await _settle_with_a_failing_step(sessions, clock, caplog)


async def test_settling_a_delivery_keeps_what_it_can_in_one_transaction_postgres(
    pg_sessions: SessionFactory, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    await _settle_with_a_failing_step(pg_sessions, clock, caplog)
