"""The HTTP API's tables on PostgreSQL: keys (keyed hash, revoke) and image bytes (bytea) in and out,
expiry and purge. Skipped when no server answers on 127.0.0.1:5432."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.catalog import ModelId
from bot.clock import ManualClock
from bot.db import SessionFactory
from bot.levels import Level
from bot.services.api_files import ApiFiles, input_ref
from bot.services.api_keys import ApiKeyService
from bot.services.jobs import GenerationJobs
from bot.services.quota import QuotaService
from bot.services.users import Profile, UserService
from tests.conftest import make_settings
from tests.support import png

pytestmark = pytest.mark.postgres


async def test_api_keys_and_files_on_postgres(pg_sessions: SessionFactory, clock: ManualClock) -> None:
    await UserService(pg_sessions, clock, frozenset()).register(Profile(id=5, first_name="Pat"))
    keys = ApiKeyService(pg_sessions, clock, "pg-test-secret-0123456789")
    made = await keys.create(5)
    assert await keys.authenticate(made.key) == 5
    assert await keys.revoke(5, made.view.id) and await keys.authenticate(made.key) is None

    settings = make_settings("sqlite+aiosqlite://")
    jobs = GenerationJobs(pg_sessions, QuotaService(pg_sessions, settings, clock), clock, settings)
    submitted = await jobs.submit(
        user_id=5, chat_id=None, level=Level.USER, prompt="a fox", model=ModelId.GEMINI_FLASH, source="api"
    )
    job = submitted.generation_id
    assert job is not None
    files = ApiFiles(pg_sessions, clock, ttl_seconds=60)
    image = png()
    [first, second] = await files.store_results(job, [(image, "image/png"), (b"\x00\xff" * 10, "image/jpeg")])
    assert first != second
    assert [(s.id, s.data) for s in await files.results(job)] == [(first, image), (second, b"\x00\xff" * 10)]
    upload = await files.store_input(image, "image/png", timedelta(seconds=600))
    stored = await files.input_for(input_ref(upload))
    assert stored is not None and stored.data == image
    assert await files.get(upload) is None  # an upload is not served as a result

    clock.advance(timedelta(seconds=61))
    assert await files.get(first) is None
    assert await files.purge() == 2
    assert await files.input_for(input_ref(upload)) is not None  # kept for its job
