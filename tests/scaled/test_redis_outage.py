"""Redis gone while the bot runs: a short "busy, try again", nothing charged, and the bot carries on
when Redis is back. A private redis-server on its own port is really stopped and started again."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiogram.types import Update

from bot.app import Services, attach_worker, build_services, create_dispatcher
from bot.clock import ManualClock
from bot.i18n import create_i18n
from bot.levels import Level
from bot.queue import JobQueue, create_broker
from bot.telegram import create_bot
from models import Generation, GenerationStatus
from tests.conftest import TOKEN, make_settings
from tests.fakes.telegram import FakeTelegram, FakeUser
from tests.scaled.processes import free_port
from tests.support import default_stubs

ANN = FakeUser(id=801, first_name="Ann")


class RedisServer:
    """A throwaway redis-server (no persistence) that a test can stop and start on the same port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (the scaled tests need it)")
        self._proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def ready(self) -> None:
        for _ in range(100):
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise AssertionError("the private redis-server did not start")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()


async def _bot(services: Services, tg: FakeTelegram) -> Any:
    bot = create_bot(TOKEN, tg.url)
    i18n = create_i18n()
    dp = create_dispatcher(services, i18n)
    attach_worker(services, bot, i18n)
    ids = itertools.count(1)

    async def say(text: str) -> None:
        update = {"update_id": next(ids), **tg.message(ANN, text)}
        await dp.feed_update(bot, Update.model_validate(update, context={"bot": bot}))

    return bot, dp, say


async def test_redis_outage_answers_busy_charges_nothing_and_recovers(
    redis_server: RedisServer, db_url: str, clock: ManualClock
) -> None:
    await redis_server.ready()
    settings = make_settings(db_url, REDIS_URL=redis_server.url, REDIS_NAMESPACE="outage")
    services = await build_services(settings, clock, providers=list(default_stubs().values()))
    tg = await FakeTelegram().start()
    bot, dp, say = await _bot(services, tg)
    stop = asyncio.Event()
    consuming = asyncio.create_task(services.queue.consume(stop, 4, 0))
    try:
        await say("a red fox")
        await tg.wait_for("sendPhoto", chat_id=ANN.id, timeout=20)

        redis_server.stop()
        await say("a blue fox")
        assert "busy right now" in tg.sent_texts(ANN.id)[-1]
        assert (await services.quota.status(ANN.id, Level.USER)).used == 1

        redis_server.start()  # empty: the stream and its consumer group are gone with the old one
        await redis_server.ready()
        await say("a green fox")
        await tg.wait_for("sendPhoto", chat_id=ANN.id, count=2, timeout=30)
        assert (await services.quota.status(ANN.id, Level.USER)).used == 2
    finally:
        stop.set()
        consuming.cancel()
        await asyncio.gather(consuming, return_exceptions=True)
        await dp.storage.close()
        await bot.session.close()
        await services.aclose()
        await tg.stop()


async def test_a_prompt_whose_job_cannot_be_queued_is_withdrawn_and_not_charged(
    tmp_path: Path, db_url: str, clock: ManualClock
) -> None:
    """Redis answered the FSM lookup but is gone by the time the job is queued."""
    services = await build_services(make_settings(db_url), clock, providers=list(default_stubs().values()))
    dead = make_settings(db_url, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    services.queue = JobQueue(create_broker(dead))  # a real Redis broker, pointed at a closed port
    tg = await FakeTelegram().start()
    bot, _dp, say = await _bot(services, tg)
    try:
        await say("a red fox")
        texts = tg.sent_texts(ANN.id)
        assert "busy right now" in texts[-1]
        assert tg.calls_of("deleteMessage", ok=True)  # the "Generating…" line went away again
        assert (await services.quota.status(ANN.id, Level.USER)).used == 0
        async with services.sessions() as session:
            row = await session.get(Generation, 1)
            assert row is not None and (row.status, row.error_class) == (GenerationStatus.CANCELLED, "QueueUnavailable")
    finally:
        await bot.session.close()
        await services.aclose()
        await tg.stop()
