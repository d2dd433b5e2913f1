"""The embedded set-up (one process, SQLite, in-memory queue) killed with SIGKILL mid-generation:
the next start resumes the job instead of refunding it; the user gets the image, charged once."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import TOKEN
from tests.fakes.providers import FakePollinations
from tests.fakes.telegram import FakeTelegram, FakeUser
from tests.scaled.processes import BotProcess, free_port

pytestmark = pytest.mark.e2e


def _rows(db: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


async def test_a_job_cut_short_by_kill_9_is_resumed_not_refunded(tmp_path: Path) -> None:
    user = FakeUser(id=91, first_name="Kim")
    db = tmp_path / "data" / "bot.db"
    async with FakeTelegram() as tg, FakePollinations() as pollinations:
        port = free_port()
        env = {
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": tg.url,
            "POLLINATIONS_BASE_URL": pollinations.url,
            "METRICS": "1",
            "WEB_PORT": str(port),
        }
        pollinations.behave("delay", seconds=30)  # long enough to kill the process mid-call
        first = BotProcess(cwd=tmp_path, env=env, name="first").start()
        try:
            await first.wait_healthy(port)
            await tg.send_text(user, "a lighthouse")
            await tg.wait_for("sendMessage", lambda c: "Generating" in c.params["text"], chat_id=user.id, timeout=30)
            for _ in range(300):  # the worker has called the provider: the job is mid-flight
                if pollinations.requests:
                    break
                await asyncio.sleep(0.1)
            assert pollinations.requests
            first.kill()
            await first.wait(10)
        finally:
            first.cleanup()
        assert _rows(db, "SELECT status FROM generations") == [("running",)]
        assert _rows(db, "SELECT used FROM daily_usage") == [(1,)]

        pollinations.behave("ok")
        second = BotProcess(cwd=tmp_path, env=env, name="second").start()
        try:
            await second.wait_healthy(port)
            photo = await tg.wait_for("sendPhoto", chat_id=user.id, timeout=60)
            assert pollinations.made(photo.files["photo"])
        finally:
            await second.stop()
        texts = tg.sent_texts(user.id)
        assert not any("interrupted" in t for t in texts), texts
        assert len(tg.sent_photos(user.id)) == 1
        assert _rows(db, "SELECT status, job_attempts FROM generations") == [("delivered", 2)]
        assert _rows(db, "SELECT used FROM daily_usage") == [(1,)]
        assert "Traceback" not in second.log_text()
