"""`python -m bot` whose FLUX Dev call hangs on a Hub that accepts and never answers: SIGTERM still
ends the process within SHUTDOWN_GRACE (the stuck huggingface_hub thread does not keep it alive), and
the job goes back on the queue instead of being refunded or lost."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import TOKEN
from tests.fakes.providers import FakePollinations, FakeReplicate
from tests.fakes.silent import SilentServer
from tests.fakes.telegram import FakeTelegram, FakeUser
from tests.scaled.processes import BotProcess, free_port

pytestmark = pytest.mark.e2e
GRACE = 2.0


async def test_sigterm_ends_the_process_within_the_grace_period_while_the_hub_hangs(tmp_path: Path) -> None:
    user = FakeUser(id=92, first_name="Lev")
    async with (
        FakeTelegram() as tg,
        FakePollinations() as pollinations,
        FakeReplicate() as router,
        SilentServer() as hub,
    ):
        port = free_port()
        env = {
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": tg.url,
            "HF_TOKEN": "hf_test_token_stall",
            "HF_ENDPOINT": hub.url,
            "HF_ROUTER_URL": router.url,
            "POLLINATIONS_BASE_URL": pollinations.url,
            "HF_TIMEOUT": "60",  # far longer than the grace period: the timeout is not what ends it
            "SHUTDOWN_GRACE": str(GRACE),
            "METRICS": "1",
            "WEB_PORT": str(port),
        }
        bot = BotProcess(cwd=tmp_path, env=env, name="bot").start()
        try:
            await bot.wait_healthy(port)
            await tg.send_text(user, "a lighthouse")  # no Gemini key: FLUX Dev is the first step
            await hub.wait_for_connection(timeout=30)
            stopping = time.monotonic()
            bot.terminate()
            code = await bot.wait(timeout=GRACE + 8)
            took = time.monotonic() - stopping
        finally:
            bot.cleanup()
        assert code == 0, bot.log_tail()
        assert took < GRACE + 5, took
        log = bot.log_text()
        assert "Traceback" not in log, log[-3000:]
    with sqlite3.connect(tmp_path / "data" / "bot.db") as db:
        assert db.execute("SELECT status FROM generations").fetchall() == [("queued",)]  # resumed next start
        assert db.execute("SELECT used FROM daily_usage").fetchall() == [(1,)]
    assert not pollinations.requests  # the chain never got past the hanging step
