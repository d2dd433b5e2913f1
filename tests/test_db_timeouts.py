"""A black-holed PostgreSQL (packets vanish: no refusal, no reset) fails a request within the
configured timeouts instead of hanging it: on connect, and mid-session on a query."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from bot.config import Settings
from bot.db import create_engine, engine_options
from bot.faults import is_outage
from tests.conftest import make_settings, postgres_url

HANG_GUARD = 20.0  # what "hangs" means here: asyncpg's own default connect timeout is 60 s


class Blackhole:
    """Accepts TCP connections and never answers; with `upstream`, forwards to it until `swallow()`."""

    def __init__(self, upstream: tuple[str, int] | None = None) -> None:
        self.upstream = upstream
        self.swallowing = upstream is None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> Blackhole:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def swallow(self) -> None:
        self.swallowing = True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        if self.upstream is None:
            await self._drain_forever(reader)
            return
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self._writers.append(up_writer)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)

    async def _drain_forever(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while await reader.read(65536):
                pass

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await src.read(65536):
                if not self.swallowing:  # once swallowing, bytes go nowhere in either direction
                    dst.write(data)
                    await dst.drain()

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()


def _settings(**env: object) -> Settings:
    return make_settings("postgresql+asyncpg://bot@127.0.0.1:1/bot", **env)


def test_timeouts_and_keepalives_reach_asyncpg() -> None:
    options = engine_options(_settings(DB_CONNECT_TIMEOUT=3, DB_COMMAND_TIMEOUT=7))
    args = options["connect_args"]
    assert (args["timeout"], args["command_timeout"]) == (3, 7)
    assert {"tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count"} <= set(args["server_settings"])
    defaults = engine_options(_settings())["connect_args"]
    assert (defaults["timeout"], defaults["command_timeout"]) == (10, 30)
    assert engine_options(make_settings("sqlite+aiosqlite:///x.db")) == {}


async def test_a_black_holed_server_fails_the_connect_within_the_timeout() -> None:
    async with Blackhole() as hole:
        url = f"postgresql+asyncpg://bot@127.0.0.1:{hole.port}/bot"
        engine = create_engine(url, **engine_options(_settings(DB_CONNECT_TIMEOUT=1)))
        started = time.monotonic()
        try:
            with pytest.raises(Exception) as info:
                async with asyncio.timeout(HANG_GUARD), engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()
        took = time.monotonic() - started
    assert took < 3, f"took {took:.1f} s"
    assert is_outage(info.value), repr(info.value)  # the user hears "busy, nothing was charged"


@pytest.fixture
async def pg_address() -> AsyncIterator[tuple[str, int]]:
    if postgres_url() is None:
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    yield ("127.0.0.1", 5432)


@pytest.mark.postgres
async def test_a_server_that_goes_silent_mid_session_fails_the_query_within_the_timeout(
    pg_address: tuple[str, int],
) -> None:
    url = postgres_url()
    assert url is not None
    async with Blackhole(upstream=pg_address) as hole:
        proxied = url.replace("127.0.0.1:5432", f"127.0.0.1:{hole.port}")
        engine = create_engine(proxied, **engine_options(_settings(DB_CONNECT_TIMEOUT=1, DB_COMMAND_TIMEOUT=1)))
        try:
            async with engine.connect() as conn:
                assert await conn.scalar(text("SELECT 1")) == 1
            hole.swallow()  # the network now drops everything, the way a dead route does
            started = time.monotonic()
            with pytest.raises(Exception) as info:
                async with asyncio.timeout(HANG_GUARD), engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            took = time.monotonic() - started
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await engine.dispose()
    # The pool's pre-ping waits one command timeout, then a reconnect one connect timeout.
    assert took < 4, f"took {took:.1f} s"
    assert is_outage(info.value), repr(info.value)
