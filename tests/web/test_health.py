"""/healthz: a load balancer reads the status code, an operator the names; no secret ever leaks."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from bot.db import create_engine
from bot.web.health import database_check, ping_check
from bot.web.server import build_web_app, serve

PASSWORD = "hunter2-s3cret"


async def get_health(http: aiohttp.ClientSession, checks: dict, deadline: float = 2.0) -> tuple[int, dict]:
    app = build_web_app(checks=checks, metrics=None, health_timeout=deadline)
    async with serve(app, "127.0.0.1", 0) as where, http.get(f"{where.url}/healthz") as resp:
        return resp.status, await resp.json()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def ok() -> None:
    return None


async def test_all_checks_pass_answers_200(http: aiohttp.ClientSession) -> None:
    status, body = await get_health(http, {"database": ok, "redis": ok, "queue": ok})

    assert status == 200
    assert body == {"status": "ok", "checks": {"database": "ok", "redis": "ok", "queue": "ok"}}


async def test_no_checks_means_the_process_answers(http: aiohttp.ClientSession) -> None:
    assert await get_health(http, {}) == (200, {"status": "ok", "checks": {}})


async def test_a_failing_check_answers_503_naming_it_without_the_error(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    async def database() -> None:
        raise OSError(f"could not connect to postgresql://bot:{PASSWORD}@db/bot")

    async def queue() -> bool:
        return False

    with caplog.at_level(logging.WARNING, logger="bot.web.health"):
        status, body = await get_health(http, {"database": database, "redis": ok, "queue": queue})

    assert status == 503
    assert body == {"status": "down", "checks": {"database": "down", "redis": "ok", "queue": "down"}}
    assert "OSError" in caplog.text
    assert PASSWORD not in caplog.text and "postgresql://" not in caplog.text


async def test_a_hanging_check_is_cut_off_at_the_deadline(http: aiohttp.ClientSession) -> None:
    cancelled = asyncio.Event()

    async def hangs() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def also_hangs() -> None:
        await asyncio.sleep(60)

    started = time.monotonic()
    status, body = await get_health(http, {"redis": hangs, "queue": also_hangs, "database": ok}, deadline=0.3)
    elapsed = time.monotonic() - started

    assert status == 503
    assert body["checks"] == {"redis": "down", "queue": "down", "database": "ok"}
    assert elapsed < 2.0, "checks run together: two hanging checks cost one deadline"
    assert cancelled.is_set()


async def test_database_check_on_real_engines(
    http: aiohttp.ClientSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ok.db'}")
    bad = create_engine(f"postgresql+asyncpg://bot:{PASSWORD}@127.0.0.1:{closed_port()}/bot")
    try:
        with caplog.at_level(logging.DEBUG):
            status, body = await get_health(http, {"database": database_check(good), "replica": database_check(bad)})
    finally:
        await good.dispose()
        await bad.dispose()

    assert status == 503
    assert body["checks"] == {"database": "ok", "replica": "down"}
    assert "Health check replica failed" in caplog.text
    assert PASSWORD not in caplog.text


async def test_redis_check_down_hides_the_url_with_its_password(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    client = Redis.from_url(f"redis://:{PASSWORD}@127.0.0.1:{closed_port()}/0", socket_connect_timeout=1)
    try:
        with caplog.at_level(logging.DEBUG):
            app = build_web_app(checks={"redis": ping_check(client)}, metrics=None)
            async with serve(app, "127.0.0.1", 0) as where, http.get(f"{where.url}/healthz") as resp:
                status, raw = resp.status, await resp.text()
    finally:
        await client.aclose()

    assert status == 503
    assert '"redis": "down"' in raw
    assert PASSWORD not in raw and "redis://" not in raw and "Error" not in raw
    assert PASSWORD not in caplog.text


async def test_redis_check_up_against_the_local_server(http: aiohttp.ClientSession) -> None:
    client = Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1)
    try:
        try:
            await client.ping()
        except Exception:  # any failure: no server to test against
            pytest.skip("no Redis server on 127.0.0.1:6379")
        status, body = await get_health(http, {"redis": ping_check(client)})
    finally:
        await client.aclose()

    assert (status, body["checks"]) == (200, {"redis": "ok"})
