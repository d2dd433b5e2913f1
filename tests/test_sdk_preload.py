"""Provider SDKs are imported in a thread by processes that run jobs, and never by a front end."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.providers.sdk_preload import GEMINI_SDK, HUB_SDK, preload, sdk_modules
from tests.conftest import TOKEN, make_settings

ROOT = Path(__file__).resolve().parent.parent


def test_only_the_configured_providers_sdks_are_named() -> None:
    url = "sqlite+aiosqlite://"
    assert sdk_modules(make_settings(url)) == []
    assert sdk_modules(make_settings(url, GEMINI_API_KEY="g-key")) == list(GEMINI_SDK)
    assert sdk_modules(make_settings(url, GEMINI_API_KEY="g-key", HF_TOKEN="hf_x")) == [*GEMINI_SDK, *HUB_SDK]


async def test_a_slow_import_runs_off_the_event_loop_and_a_broken_one_is_only_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "slow_sdk_probe.py").write_text(
        "import threading, time\nIMPORTED_ON_MAIN = threading.current_thread() is threading.main_thread()\n"
        "time.sleep(0.5)\n"
    )
    (tmp_path / "broken_sdk_probe.py").write_text("raise ImportError('no such wheel')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    ticker = asyncio.create_task(tick())
    with caplog.at_level(logging.INFO, "bot.providers.sdk_preload"):
        await preload(["broken_sdk_probe", "slow_sdk_probe"])
    ticker.cancel()
    import slow_sdk_probe  # type: ignore[import-not-found]

    assert slow_sdk_probe.IMPORTED_ON_MAIN is False
    assert ticks >= 5  # the loop kept running through the half-second import
    assert "broken_sdk_probe" not in sys.modules
    messages = [r.getMessage() for r in caplog.records]
    assert "provider SDK broken_sdk_probe not preloaded (ImportError)" in messages
    assert any(m.startswith("provider SDKs loaded in") and m.endswith(": slow_sdk_probe") for m in messages)


PROCESS = (
    "import asyncio, sys\n"
    "from bot.__main__ import _migrate_in_child\n"
    "from bot.config import load_settings\n"
    "from bot.app import BotApp\n"
    "async def run() -> None:\n"
    "    settings = load_settings()\n"
    "    assert _migrate_in_child(settings) == 0\n"
    "    app = await BotApp.create(settings, migrate=False)\n"
    "    await app.start_background()\n"
    "    for task in list(app._background):\n"
    "        if task.get_name() == 'sdk-preload':\n"
    "            await task\n"
    "    await app.stop_background()\n"
    "    await app.services.aclose()\n"
    "    await app.bot.session.close()\n"
    "asyncio.run(run())\n"
    "print('google.genai' in sys.modules)\n"
)


def gemini_loaded_after_start_up(env: dict[str, str], cwd: Path) -> bool:
    """Start the app's background work as `python -m bot` does (no polling) and stop it: was
    google-genai imported? (A child process: this one may have imported it already.)"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BOT_TOKEN": TOKEN, "GEMINI_API_KEY": "gemini-key-never-used", **env}
    out = subprocess.run(
        [sys.executable, "-c", PROCESS], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1] == "True"


def test_a_process_that_runs_jobs_loads_gemini_at_start_up(tmp_path: Path) -> None:
    """The front end's side (WORKERS=0 needs Redis): tests/scaled/test_sdk_preload_front.py."""
    assert gemini_loaded_after_start_up({"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"}, tmp_path)
