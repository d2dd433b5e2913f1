"""The same services on PostgreSQL (the bigger-deployment database): every SQL shape the bot uses.

Skipped when no server answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.catalog import ModelId
from bot.clock import ManualClock
from bot.config import Plan
from bot.db import SessionFactory
from bot.levels import Level
from bot.providers.base import ErrorKind
from bot.services.bans import BanService
from bot.services.generation import GenerationService
from bot.services.jobs import GenerationJobs, JobView, SubmitStatus
from bot.services.payments import PaymentService
from bot.services.quota import QuotaService
from bot.services.reports import ReportService
from bot.services.user_levels import LevelService
from bot.services.users import Profile, UserService
from models import Generation, GenerationStatus
from tests.conftest import make_settings
from tests.support import default_stubs, run_job

pytestmark = pytest.mark.postgres
PLAN = Plan(days=30, stars=250)


async def test_users_jobs_reports_payments_on_postgres(pg_sessions: SessionFactory, clock: ManualClock) -> None:
    settings = make_settings("sqlite+aiosqlite://", DAILY_LIMIT_USER=3, INFLIGHT_CAP="user:0")
    users = UserService(pg_sessions, clock, frozenset({9}))
    levels = LevelService(users.rows)
    bans = BanService(users.rows)
    quota = QuotaService(pg_sessions, settings, clock)
    stubs = default_stubs()
    generation = GenerationService(list(stubs.values()))
    jobs = GenerationJobs(pg_sessions, quota, clock, settings)
    reports = ReportService(pg_sessions, quota, clock)
    payments = PaymentService(pg_sessions, users, levels, (PLAN,), clock)

    ann = await users.register(Profile(id=1, first_name="Ann", username="Ann_X", language_code="ru"))
    await users.register(Profile(id=9, first_name="Root"))
    assert (await users.find("@ann_x")) is not None and (await users.get(9)).level is Level.ADMIN  # type: ignore[union-attr]

    kwargs = {"user_id": 1, "chat_id": 1, "level": ann.level, "prompt": "p", "model": ModelId.GEMINI_FLASH}
    results = await asyncio.gather(*(run_job(jobs, generation, f"w{i}", **kwargs) for i in range(6)))  # type: ignore[arg-type]
    assert [r[1] for r in results].count(GenerationStatus.DELIVERED) == 3
    assert [r[0].status for r in results].count(SubmitStatus.LIMIT_REACHED) == 3
    stubs["gemini"].outcomes = [ErrorKind.UNAVAILABLE]
    clock.advance(timedelta(days=1))
    assert (await run_job(jobs, generation, **kwargs))[1] is GenerationStatus.DELIVERED  # type: ignore[arg-type]
    for stub in stubs.values():
        stub.outcomes = [ErrorKind.TIMEOUT]
    assert (await run_job(jobs, generation, **kwargs))[1] is GenerationStatus.FAILED  # type: ignore[arg-type]

    stats = await reports.stats(2)
    assert (stats.delivered, stats.failed, stats.fallbacks) == (4, 1, 1)
    assert stats.by_provider == {"gemini": 3, "hf-replicate": 1} and stats.top_users[0][2] == 4
    report = await reports.user_report(await users.get(1))  # type: ignore[arg-type]
    assert (report.delivered_total, report.failed_total, report.quota.used) == (4, 1, 1)

    lost = await jobs.submit(**(kwargs | {"prompt": "lost"}))  # type: ignore[arg-type]
    taken = await asyncio.gather(*(jobs.claim(f"w{i}", timedelta(seconds=60)) for i in range(3)))
    assert [t.id for t in taken if isinstance(t, JobView)] == [lost.generation_id]  # one worker only
    clock.advance(timedelta(minutes=20))  # its worker died long ago: refunded, not resumed
    assert [s.generation_id for s in (await jobs.recover(take_over=False)).refunded] == [lost.generation_id]
    assert (await quota.status(1, Level.USER)).used == 1

    pay = {"provider_charge_id": None, "payload": PLAN.payload, "currency": "XTR", "amount": 250}
    credits = await asyncio.gather(*(payments.credit(1, charge_id="ch", **pay) for _ in range(3)))  # type: ignore[arg-type]
    assert sum(c.credited for c in credits if c) == 1
    assert (await users.get(1)).level_until == clock.now() + timedelta(days=30)  # type: ignore[union-attr]
    assert await payments.mark_refunded("ch") is not None
    assert (await users.get(1)).level is Level.USER  # type: ignore[union-attr]

    await levels.set_level(1, Level.SUBSCRIBER, days=1)
    clock.advance(timedelta(hours=2))
    assert [u.id for u in await levels.expiring_soon(timedelta(days=1))] == [1]
    clock.advance(timedelta(days=1))
    assert await levels.expire_levels() == [(1, Level.SUBSCRIBER)]
    assert await bans.claim_ban_notice(1) is False
    await bans.set_ban(1, True)
    assert await bans.claim_ban_notice(1) is True and await bans.claim_ban_notice(1) is False


async def test_concurrent_claims_never_strand_a_queued_job(pg_sessions: SessionFactory, clock: ManualClock) -> None:
    """Each queue message is one claim; a claim that finds nothing while a job waits would leave that
    job without a message. Claims, status-message writes and sweeps run at once, as in a burst."""
    settings = make_settings("sqlite+aiosqlite://", DAILY_LIMIT_USER=1000, INFLIGHT_CAP="user:0")
    users = UserService(pg_sessions, clock, frozenset())
    jobs = GenerationJobs(pg_sessions, QuotaService(pg_sessions, settings, clock), clock, settings)
    for uid in range(1, 41):
        await users.register(Profile(id=uid, first_name=f"U{uid}"))
    for _round in range(4):
        results: list[object] = []
        claims: list[asyncio.Task[None]] = []

        async def claim(generation_id: int, into: list[object] = results) -> None:
            into.append(await jobs.claim(f"w{generation_id}", timedelta(seconds=60), preferred=generation_id))

        async def prompt(uid: int, into: list[asyncio.Task[None]] = claims) -> None:
            await asyncio.sleep(random.random() * 0.05)
            level = Level.SUBSCRIBER if uid % 3 == 0 else Level.USER  # priorities make claims pass rows over
            submitted = await jobs.submit(user_id=uid, chat_id=uid, level=level, prompt="p", model=ModelId.FLUX_DEV)
            assert submitted.generation_id is not None
            await jobs.set_status_message(submitted.generation_id, 1000 + uid)
            into.append(asyncio.create_task(claim(submitted.generation_id)))

        async def sweep() -> None:
            for _ in range(10):
                await jobs.recover(take_over=False, stale_after=timedelta(hours=1))
                await asyncio.sleep(0.005)

        await asyncio.gather(*(prompt(uid) for uid in range(1, 41)), sweep())
        await asyncio.gather(*claims)
        assert sum(isinstance(r, JobView) for r in results) == 40
        assert await jobs.depth() == 0
        for r in results:
            assert isinstance(r, JobView)
            await jobs.finish(r.id, f"w{r.id}", GenerationStatus.DELIVERED, None, delivered=1)


async def test_a_prompt_racing_the_end_of_the_users_job_is_never_left_waiting(
    pg_sessions: SessionFactory, clock: ManualClock
) -> None:
    settings = make_settings("sqlite+aiosqlite://", DAILY_LIMIT_USER=1000, INFLIGHT_CAP="user:1")
    users = UserService(pg_sessions, clock, frozenset())
    jobs = GenerationJobs(pg_sessions, QuotaService(pg_sessions, settings, clock), clock, settings)
    ask = {"chat_id": 1, "level": Level.USER, "prompt": "p", "model": ModelId.FLUX_DEV}
    for uid in range(1, 21):
        await users.register(Profile(id=uid, first_name=f"U{uid}"))
        first = await jobs.submit(user_id=uid, **ask)  # type: ignore[arg-type]
        running = await jobs.claim(f"w{uid}", timedelta(seconds=60), preferred=first.generation_id)
        assert isinstance(running, JobView)

        async def finish(job: JobView = running, uid: int = uid) -> object:
            await asyncio.sleep(random.random() * 0.01)
            return await jobs.finish(job.id, f"w{uid}", GenerationStatus.DELIVERED, None, delivered=1)

        async def submit(uid: int = uid) -> object:
            await asyncio.sleep(random.random() * 0.01)
            return await jobs.submit(user_id=uid, **ask)  # type: ignore[arg-type]

        await asyncio.gather(finish(), submit())
        async with pg_sessions() as session:
            statuses = sorted(
                (await session.execute(select(Generation.status).where(Generation.user_id == uid))).scalars()
            )
        assert statuses == ["delivered", "queued"], statuses
