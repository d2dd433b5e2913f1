"""From quota to delivery: charged only for delivered images, released on every other path."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.db import SessionFactory
from bot.levels import Level
from bot.providers.base import ErrorKind, ModelId
from bot.services.generation import GenerationResult, GenerationService
from bot.services.jobs import GenerationJobs, JobStatus
from bot.services.quota import QuotaService, Reservation
from bot.services.users import Profile, UserService
from models import Generation
from tests.conftest import make_settings
from tests.support import default_stubs


async def _jobs(sessions: SessionFactory, clock: ManualClock, limit: int = 2, stubs=None):  # type: ignore[no-untyped-def]
    settings = make_settings("sqlite+aiosqlite://", DAILY_LIMIT_USER=limit)
    await UserService(sessions, clock, frozenset()).register(Profile(id=7, first_name="Bo"))
    quota = QuotaService(sessions, settings, clock)
    stubs = stubs or default_stubs()
    return GenerationJobs(sessions, quota, GenerationService(list(stubs.values())), clock), quota, stubs


async def _records(sessions: SessionFactory) -> list[Generation]:
    async with sessions() as s:
        return list((await s.execute(select(Generation).order_by(Generation.id))).scalars())


async def test_delivered_image_is_charged_and_recorded(sessions: SessionFactory, clock: ManualClock) -> None:
    jobs, quota, _ = await _jobs(sessions, clock)
    seen: list[tuple[GenerationResult, Reservation]] = []

    async def deliver(result: GenerationResult, reservation: Reservation) -> None:
        seen.append((result, reservation))

    out = await jobs.run(
        user_id=7, chat_id=7, level=Level.USER, prompt="a fox", model=ModelId.GEMINI_FLASH, deliver=deliver
    )
    assert out.status is JobStatus.DELIVERED
    assert seen[0][1].remaining == 1
    assert (await quota.status(7, Level.USER)).used == 1
    [row] = await _records(sessions)
    assert (row.status, row.provider, row.model_requested, row.user_id) == ("delivered", "gemini", "gemini-flash", 7)
    assert row.attempts[0]["outcome"] == "ok" and row.latency_ms is not None and row.finished_at is not None


async def test_all_providers_failing_costs_nothing(sessions: SessionFactory, clock: ManualClock) -> None:
    jobs, quota, stubs = await _jobs(sessions, clock)
    for stub in stubs.values():
        stub.outcomes = [ErrorKind.UNAVAILABLE]

    async def deliver(result: GenerationResult, reservation: Reservation) -> None:
        raise AssertionError("nothing to deliver")

    out = await jobs.run(
        user_id=7, chat_id=7, level=Level.USER, prompt="a fox", model=ModelId.FLUX_DEV, deliver=deliver
    )
    assert out.status is JobStatus.FAILED
    assert (await quota.status(7, Level.USER)).used == 0
    [row] = await _records(sessions)
    assert row.status == "failed" and row.error_class == "unavailable" and len(row.attempts) == 3


async def test_failed_delivery_releases_the_unit(sessions: SessionFactory, clock: ManualClock) -> None:
    jobs, quota, _ = await _jobs(sessions, clock)

    async def deliver(result: GenerationResult, reservation: Reservation) -> None:
        raise ConnectionError("telegram down")

    with pytest.raises(ConnectionError):
        await jobs.run(user_id=7, chat_id=7, level=Level.USER, prompt="a", model=ModelId.FLUX_DEV, deliver=deliver)
    assert (await quota.status(7, Level.USER)).used == 0
    assert (await _records(sessions))[0].status == "undelivered"


async def test_cancelled_generation_releases_the_unit(sessions: SessionFactory, clock: ManualClock) -> None:
    stubs = default_stubs()
    stubs["gemini"].delay = 30
    jobs, quota, _ = await _jobs(sessions, clock, stubs=stubs)
    reserved = asyncio.Event()

    async def deliver(result: GenerationResult, reservation: Reservation) -> None:
        return None

    async def started() -> None:
        reserved.set()

    task = asyncio.create_task(
        jobs.run(
            user_id=7, chat_id=7, level=Level.USER, prompt="a", model=ModelId.GEMINI_FLASH, deliver=deliver,
            started=started,
        )
    )  # fmt: skip
    await asyncio.wait_for(reserved.wait(), 10)
    assert (await quota.status(7, Level.USER)).used == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await quota.status(7, Level.USER)).used == 0
    assert (await _records(sessions))[0].status == "interrupted"


async def test_limit_reached_reports_when_it_resets(sessions: SessionFactory, clock: ManualClock) -> None:
    jobs, _, stubs = await _jobs(sessions, clock, limit=1)

    async def deliver(result: GenerationResult, reservation: Reservation) -> None:
        return None

    kwargs = {"user_id": 7, "chat_id": 7, "level": Level.USER, "prompt": "a", "model": ModelId.GEMINI_FLASH}
    assert (await jobs.run(deliver=deliver, **kwargs)).status is JobStatus.DELIVERED  # type: ignore[arg-type]
    out = await jobs.run(deliver=deliver, **kwargs)  # type: ignore[arg-type]
    assert out.status is JobStatus.LIMIT_REACHED and out.quota is not None
    assert out.quota.resets_at == clock.next_reset()
    assert len(stubs["gemini"].calls) == 1  # no provider call once the limit is reached
    clock.advance(timedelta(days=1))
    assert (await jobs.run(deliver=deliver, **kwargs)).status is JobStatus.DELIVERED  # type: ignore[arg-type]


async def test_forbidden_model_never_reserves(sessions: SessionFactory, clock: ManualClock) -> None:
    jobs, quota, stubs = await _jobs(sessions, clock)

    async def deliver(result: GenerationResult, reservation: Reservation) -> None:
        return None

    out = await jobs.run(user_id=7, chat_id=7, level=Level.USER, prompt="a", model=ModelId.FLUX_PRO, deliver=deliver)
    assert out.status is JobStatus.FORBIDDEN and out.required_level is Level.SUBSCRIBER
    assert (await quota.status(7, Level.USER)).used == 0
    assert not stubs["hf"].calls


async def test_restart_releases_generations_left_pending(sessions: SessionFactory, clock: ManualClock) -> None:
    jobs, quota, _ = await _jobs(sessions, clock)
    # Simulate a crash: a reservation and a pending record, and nothing else.
    reserved = await jobs._reserve(7, 7, Level.USER, "lost", ModelId.GEMINI_FLASH, 1, clock.now())
    assert reserved is not None
    assert (await quota.status(7, Level.USER)).used == 1
    recovered = await jobs.recover_interrupted()
    assert [(r.user_id, r.chat_id, r.prompt) for r in recovered] == [(7, 7, "lost")]
    assert (await quota.status(7, Level.USER)).used == 0
    assert (await _records(sessions))[0].status == "interrupted"
    assert await jobs.recover_interrupted() == []
