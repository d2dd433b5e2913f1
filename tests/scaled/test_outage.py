"""PostgreSQL gone while the bot runs: updates get a short "busy, try again", nothing is charged,
and the bot recovers by itself when the database is back. Real PostgreSQL, real Dispatcher."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import asyncpg
import pytest
from aiogram.types import Update
from sqlalchemy.engine import make_url

from bot.app import attach_worker, build_services, create_dispatcher
from bot.clock import ManualClock
from bot.i18n import create_i18n
from bot.levels import Level
from bot.telegram import create_bot
from tests.conftest import TOKEN, make_settings
from tests.fakes.telegram import FakeTelegram, FakeUser
from tests.support import default_stubs

ANN = FakeUser(id=501, first_name="Ann")


async def _set_connections(url: str, allowed: bool) -> None:
    """Close the database to new sessions and end the current ones (as a restart would), or reopen it."""
    name = make_url(url).database
    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if allowed else "false"}')
        if not allowed:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
    finally:
        await conn.close()


async def test_database_outage_answers_busy_charges_nothing_and_recovers(
    pg_url: str, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    services = await build_services(make_settings(pg_url), clock, providers=list(default_stubs().values()))
    tg = await FakeTelegram().start()
    bot = create_bot(TOKEN, tg.url)
    i18n = create_i18n()
    dp = create_dispatcher(services, i18n)
    attach_worker(services, bot, i18n)
    ids = itertools.count(1)

    async def say(text: str) -> None:
        update: dict[str, Any] = {"update_id": next(ids), **tg.message(ANN, text)}
        await dp.feed_update(bot, Update.model_validate(update, context={"bot": bot}))
        await services.queue.drained()

    try:
        await say("/start")
        await _set_connections(pg_url, allowed=False)
        caplog.set_level(logging.WARNING)
        await say("a red fox")
        assert "busy right now" in tg.sent_texts(ANN.id)[-1]
        assert tg.sent_photos(ANN.id) == []
        assert "Traceback" not in caplog.text and "unreachable" in caplog.text

        await _set_connections(pg_url, allowed=True)
        await say("a red fox")
        [photo] = tg.sent_photos(ANN.id)
        assert "left today: 4 of 5" in photo.params["caption"]
        assert (await services.quota.status(ANN.id, Level.USER)).used == 1
    finally:
        await _set_connections(pg_url, allowed=True)
        await bot.session.close()
        await services.aclose()
        await tg.stop()
