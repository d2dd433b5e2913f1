"""The container HEALTHCHECK command: stdlib only, exit code follows /healthz."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from bot.web.healthcheck import probe
from bot.web.server import build_web_app, serve


async def failing() -> None:
    raise ConnectionError


async def test_probe_follows_the_status_code() -> None:
    async with (
        serve(build_web_app(checks={}, metrics=None), "127.0.0.1", 0) as up,
        serve(build_web_app(checks={"database": failing}, metrics=None), "127.0.0.1", 0) as down,
    ):
        assert await asyncio.to_thread(probe, f"{up.url}/healthz")
        assert not await asyncio.to_thread(probe, f"{down.url}/healthz")
    assert not await asyncio.to_thread(probe, f"{up.url}/healthz", 1.0)  # nothing listening


async def test_module_exits_0_when_healthy_and_imports_only_the_stdlib() -> None:
    code = (
        "import runpy, sys\n"
        "try:\n"
        "    runpy.run_module('bot.web.healthcheck', run_name='__main__')\n"
        "finally:\n"
        "    assert not {'aiohttp', 'aiogram', 'sqlalchemy', 'prometheus_client'} & set(sys.modules)\n"
    )
    async with serve(build_web_app(checks={}, metrics=None), "127.0.0.1", 0) as where:
        env = {**os.environ, "WEB_PORT": str(where.port)}
        healthy = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", code], env=env, capture_output=True, timeout=30
        )
        env["WEB_PORT"] = "1"
        unhealthy = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "bot.web.healthcheck"], env=env, capture_output=True, timeout=30
        )

    assert healthy.returncode == 0, healthy.stderr.decode()
    assert unhealthy.returncode == 1, unhealthy.stderr.decode()
