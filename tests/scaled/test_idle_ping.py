"""PostgreSQL restarted while the bot idled: the first request after it still works, because a pooled
connection idle for a while is pinged (and replaced) on checkout; a busy one is used without a ping."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import create_engine

APP = "imagebot-idle-ping-test"


async def _end_sessions(url: str) -> int:
    """What a database restart does to the bot's pooled connections."""
    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
            make_url(url).database,
            APP,
        )
        return len(rows)
    finally:
        await conn.close()


def _engine(url: str, ping_after_idle: float | None) -> AsyncEngine:
    return create_engine(
        url, ping_after_idle=ping_after_idle, connect_args={"server_settings": {"application_name": APP}}
    )


async def test_an_idle_connection_killed_by_a_restart_is_replaced_before_use(pg_url: str) -> None:
    engine = _engine(pg_url, 0.0)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
        assert await _end_sessions(pg_url) == 1
        async with engine.connect() as conn:  # the dead connection fails its ping: a new one serves
            assert await conn.scalar(text("SELECT 2")) == 2
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "ping_after_idle",
    [
        None,  # the control: what the ping is for (and proof that the kill really kills the connection)
        60.0,  # in use a moment ago: taken without a ping, so no hidden round trip under load
    ],
)
async def test_without_a_ping_the_first_request_after_a_restart_fails(
    pg_url: str, ping_after_idle: float | None
) -> None:
    engine = _engine(pg_url, ping_after_idle)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
        assert await _end_sessions(pg_url) == 1
        with pytest.raises(DBAPIError):
            async with engine.connect() as conn:
                await conn.scalar(text("SELECT 2"))
    finally:
        await engine.dispose()
