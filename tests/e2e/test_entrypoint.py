"""`python -m bot` as an operator runs it: a real process, only BOT_TOKEN (and the fake servers'
addresses), SQLite created on the fly; a prompt comes back as a photo; SIGINT stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import TOKEN
from tests.fakes.providers import FakePollinations, color_close
from tests.fakes.telegram import FakeTelegram, FakeUser
from tests.harness import photo_color

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


async def test_python_m_bot_runs_with_only_a_token(tmp_path: Path) -> None:
    user = FakeUser(id=77, first_name="Eve")
    async with FakeTelegram() as tg, FakePollinations() as pollinations:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": tg.url,
            "POLLINATIONS_BASE_URL": pollinations.url,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await tg.wait_for("getUpdates", timeout=60, include_failed=True)
            await tg.send_text(user, "/start")
            await tg.wait_for("sendMessage", chat_id=user.id, timeout=20)
            await tg.send_text(user, "a paper boat")
            photo = await tg.wait_for("sendPhoto", chat_id=user.id, timeout=30)
            assert color_close(photo_color(photo), pollinations.color)
            assert (tmp_path / "data" / "bot.db").exists()
        finally:
            proc.send_signal(signal.SIGINT)
            _out, err = await asyncio.wait_for(proc.communicate(), 40)
        assert proc.returncode == 0, err.decode()[-2000:]
        log = err.decode()
        assert "Traceback" not in log and TOKEN.split(":")[1] not in log
