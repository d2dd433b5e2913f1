"""`python -m bot api` as an operator runs it: the HTTP API alone in a real process (no polling), its
in-process workers running the jobs; the official client gets an image; SIGINT stops it cleanly."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from bot.clock import Clock
from bot.db import create_engine, create_session_factory, run_migrations
from bot.services.api_keys import ApiKeyService
from bot.services.user_view import Profile
from bot.services.users import UserService
from tests.conftest import TOKEN
from tests.e2e.api_support import SECRET, client
from tests.fakes.providers import FakePollinations
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _key(db_url: str, user_id: int) -> str:
    """A key as /apikey would make it, written to the database the process will use."""
    engine = create_engine(db_url)
    try:
        await run_migrations(engine)
        sessions = create_session_factory(engine)
        clock = Clock()
        await UserService(sessions, clock, frozenset()).register(Profile(id=user_id, first_name="Eve"))
        return (await ApiKeyService(sessions, clock, SECRET).create(user_id)).key
    finally:
        await engine.dispose()


async def test_python_m_bot_api_serves_images_alone(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'api.db'}"
    key = await _key(db_url, 77)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    async with FakeTelegram() as tg, FakePollinations() as pollinations:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": tg.url,
            "POLLINATIONS_BASE_URL": pollinations.url,
            "DATABASE_URL": db_url,
            "API_KEY_SECRET": SECRET,
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(port),
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "api", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with httpx.AsyncClient() as http:
                for _ in range(300):  # importing aiogram & co takes a few seconds
                    try:
                        if (await http.get(f"{base}/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
            async with client(base, key) as oa:
                made = await oa.images.generate(prompt="a paper boat", response_format="b64_json")
            assert pollinations.made(base64.b64decode(made.data[0].b64_json or ""))
            assert tg.calls_of("getUpdates") == []  # an API process does not poll Telegram
        finally:
            proc.send_signal(signal.SIGINT)
            _out, err = await asyncio.wait_for(proc.communicate(), 40)
        assert proc.returncode == 0, err.decode()[-2000:]
        log = err.decode()
        assert "Traceback" not in log and key not in log and SECRET not in log


async def test_python_m_bot_api_needs_the_secret(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BOT_TOKEN": TOKEN, "API_KEY_SECRET": ""}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "api", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2 and "API_KEY_SECRET" in err.decode()
