"""The kept images on SQLite and PostgreSQL: a repeated record changes nothing, history pages newest
first, clear forgets one user's images only, and the /stats day series counts by local day."""

from __future__ import annotations

import pytest

from bot.catalog import ModelId
from bot.clock import ManualClock
from bot.db import SessionFactory
from bot.levels import Level
from bot.services.gallery import GalleryService, SentImage
from bot.services.generation import GenerationService
from bot.services.jobs import GenerationJobs
from bot.services.quota import QuotaService
from bot.services.reports import ReportService
from bot.services.users import Profile, UserService
from tests.conftest import make_settings
from tests.support import default_stubs, run_job


def sent(position: int, message_id: int) -> SentImage:
    return SentImage(position, 5, message_id, "photo", f"file-{message_id}", f"u-{message_id}", 64, 48, seed=7)


async def check_gallery(sessions: SessionFactory, clock: ManualClock) -> None:
    settings = make_settings("sqlite+aiosqlite://", DAILY_LIMIT_USER=20, INFLIGHT_CAP="user:0")
    users = UserService(sessions, clock, frozenset())
    for uid in (5, 6):
        await users.register(Profile(id=uid, first_name=f"u{uid}"))
    jobs = GenerationJobs(sessions, QuotaService(sessions, settings, clock), clock, settings)
    generation = GenerationService(list(default_stubs().values()))
    gallery = GalleryService(sessions, clock)
    ids = []
    for i in range(7):
        submitted, _ = await run_job(
            jobs, generation, user_id=5, chat_id=5, level=Level.USER, prompt=f"p{i}", model=ModelId.GEMINI_FLASH
        )
        assert submitted.generation_id is not None
        ids.append(submitted.generation_id)
        await gallery.record(submitted.generation_id, [sent(0, 100 + i)])
    await gallery.record(ids[0], [sent(0, 100), sent(1, 200)])  # a re-run: position 0 kept, 1 added
    other, _ = await run_job(
        jobs, generation, user_id=6, chat_id=6, level=Level.USER, prompt="bob", model=ModelId.GEMINI_FLASH
    )
    assert other.generation_id is not None
    await gallery.record(other.generation_id, [sent(0, 300)])

    first = await gallery.result(ids[0])
    assert first is not None and first.user_id == 5 and first.prompt == "p0"
    assert [(i.position, i.file_id, i.width, i.seed) for i in first.images] == [
        (0, "file-100", 64, 7),
        (1, "file-200", 64, 7),
    ]
    page = await gallery.history(5, 0)
    assert (page.page, page.pages, page.total) == (0, 2, 7)
    assert [r.prompt for r in page.items] == ["p6", "p5", "p4", "p3", "p2"]
    last = await gallery.history(5, 9)  # past the end: the last page
    assert last.page == 1 and [r.prompt for r in last.items] == ["p1", "p0"]
    assert await gallery.clear(5) == 8
    assert (await gallery.history(5, 0)).total == 0
    assert [r.prompt for r in (await gallery.history(6, 0)).items] == ["bob"]
    days = await ReportService(sessions, QuotaService(sessions, settings, clock), clock).daily(3)
    assert [d.delivered for d in days] == [0, 0, 8]


async def test_gallery_on_sqlite(sessions: SessionFactory, clock: ManualClock) -> None:
    await check_gallery(sessions, clock)


@pytest.mark.postgres
async def test_gallery_on_postgres(pg_sessions: SessionFactory, clock: ManualClock) -> None:
    await check_gallery(pg_sessions, clock)
