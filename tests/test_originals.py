"""The originals store on SQLite and PostgreSQL: the size cap, ORIGINALS_DAYS=0, a repeated store,
expiry before and after the purge, and a document file id that outlives the bytes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.catalog import ModelId
from bot.clock import ManualClock
from bot.db import SessionFactory
from bot.levels import Level
from bot.services.generation import GenerationService
from bot.services.jobs import GenerationJobs
from bot.services.originals import NewOriginal, OriginalsService
from bot.services.quota import QuotaService
from bot.services.users import Profile, UserService
from tests.conftest import make_settings
from tests.support import default_stubs, run_job

CAP = 4096


async def check_originals(sessions: SessionFactory, clock: ManualClock) -> None:
    settings = make_settings("sqlite+aiosqlite://", DAILY_LIMIT_USER=20, INFLIGHT_CAP="user:0")
    await UserService(sessions, clock, frozenset()).register(Profile(id=5, first_name="u5"))
    jobs = GenerationJobs(sessions, QuotaService(sessions, settings, clock), clock, settings)
    generation = GenerationService(list(default_stubs().values()))
    ids = []
    for prompt in ("a", "b"):
        submitted, _ = await run_job(
            jobs, generation, user_id=5, chat_id=5, level=Level.USER, prompt=prompt, model=ModelId.GEMINI_FLASH
        )
        assert submitted.generation_id is not None
        ids.append(submitted.generation_id)
    small, big = b"\x89PNG small", b"x" * (CAP + 1)

    none = OriginalsService(sessions, clock, days=0, max_bytes=CAP)
    assert await none.keep(ids[0], [NewOriginal(0, small, "image/png")]) == 0
    assert await none.of(ids[0]) == {}

    originals = OriginalsService(sessions, clock, days=2, max_bytes=CAP)
    images = [NewOriginal(0, small, "image/png"), NewOriginal(1, big, "image/png"), NewOriginal(2, small, "image/webp")]
    assert await originals.keep(ids[0], images) == 2  # the one over PROVIDER_MAX_BYTES is not kept
    assert await originals.keep(ids[0], [NewOriginal(0, b"other", "image/jpeg")]) == 1  # a re-run: first stays
    assert await originals.keep(ids[1], [NewOriginal(0, small, "image/jpeg")]) == 1
    kept = await originals.of(ids[0])
    assert sorted(kept) == [0, 2]
    assert (kept[0].data, kept[0].mime_type, kept[2].mime_type) == (small, "image/png", "image/webp")
    await originals.remember_document(ids[0], 0, "BQAC-doc")

    clock.advance(timedelta(days=2))  # expired: no longer handed out, even before the purge
    assert [(o.data, o.document_file_id) for o in (await originals.of(ids[0])).values()] == [
        (None, "BQAC-doc"),
        (None, None),
    ]
    assert await originals.purge() == 3  # two rows deleted, one emptied down to its file id
    assert await originals.purge() == 0
    assert [(o.position, o.data, o.document_file_id) for o in (await originals.of(ids[0])).values()] == [
        (0, None, "BQAC-doc")
    ]
    assert await originals.of(ids[1]) == {}


async def test_originals_on_sqlite(sessions: SessionFactory, clock: ManualClock) -> None:
    await check_originals(sessions, clock)


@pytest.mark.postgres
async def test_originals_on_postgres(pg_sessions: SessionFactory, clock: ManualClock) -> None:
    await check_originals(pg_sessions, clock)
