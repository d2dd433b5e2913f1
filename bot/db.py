"""Async engine, session factory and migrations.

SQLite gets WAL and a busy timeout. Write transactions (`sessions.begin()`) start with BEGIN
IMMEDIATE, taking the write lock up front, so two read-then-write transactions cannot deadlock into
"database is locked"; read sessions (`sessions()`) use a plain BEGIN and, under WAL, never wait.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bot.bulk import BulkGate, is_bulk
from bot.config import Settings

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 15000
PING_AFTER_IDLE = 5.0  # seconds a pooled PostgreSQL connection may idle before it is pinged on checkout

READ_ONLY = "bot_read_only"  # execution option marking the engine that read sessions use


class SessionFactory:
    """`sessions()` for reads, `sessions.begin()` for a write transaction (committed on exit).

    With a `BulkGate`, a task doing bulk work waits for a slot before it takes a connection.
    """

    def __init__(self, engine: AsyncEngine, gate: BulkGate | None = None) -> None:
        self._read = async_sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)
        self._write = async_sessionmaker(engine, expire_on_commit=False)
        self.gate = gate
        self.engine = engine

    def __call__(self) -> AbstractAsyncContextManager[AsyncSession]:
        if self._gated():
            return self._held(self._read())
        return self._read()

    def begin(self) -> AbstractAsyncContextManager[AsyncSession]:
        if self._gated():
            return self._held(self._write.begin())
        return self._write.begin()

    def _gated(self) -> bool:
        """Only bulk work pays for the gate; every other session is SQLAlchemy's own, unwrapped."""
        return self.gate is not None and is_bulk()

    @asynccontextmanager
    async def _held(self, session: AbstractAsyncContextManager[AsyncSession]) -> AsyncIterator[AsyncSession]:
        assert self.gate is not None
        async with self.gate.hold(), session as opened:
            yield opened


# TCP keepalives, both ways: the server drops a vanished client, and this side notices a dead route
# within about idle + interval * count seconds even on an idle pooled connection.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 30, 10, 3


def engine_options(settings: Settings) -> dict[str, Any]:
    """create_engine keyword arguments from the settings: PostgreSQL's timeouts (asyncpg waits 60 s to
    connect and forever for an answer by default, so a black-holed database hung every request)."""
    if make_url(settings.database_url).get_backend_name() != "postgresql":
        return {}
    keepalives = {
        "tcp_keepalives_idle": str(KEEPALIVE_IDLE),
        "tcp_keepalives_interval": str(KEEPALIVE_INTERVAL),
        "tcp_keepalives_count": str(KEEPALIVE_COUNT),
    }
    return {
        "connect_args": {
            "timeout": settings.db_connect_timeout,
            "command_timeout": settings.db_command_timeout,
            "server_settings": keepalives,
        }
    }


def create_engine(url: str, *, ping_after_idle: float | None = PING_AFTER_IDLE, **kwargs: Any) -> AsyncEngine:
    """Create the engine; for a SQLite file, make its directory and set the pragmas on every connection.

    Other databases: a connection idle for `ping_after_idle` seconds is pinged before use (see
    `_ping_when_idle`); `None` turns that off.
    """
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        # SQLite has one writer: a few connections queue in the pool more cheaply than many do in
        # the busy handler's sleeps (benchmarks: about twice the concurrent reservations per second).
        kwargs.setdefault("pool_size", 3)
        kwargs.setdefault("max_overflow", 2)
    else:
        # Dozens of jobs per worker process each touch the database briefly (claim, lease renewals,
        # settle): SQLAlchemy's 5 + 10 made lease renewals queue for connections under a burst.
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    engine = create_async_engine(url, **kwargs)
    if is_sqlite:
        _configure_sqlite(engine)
    else:
        _configure_keepalive(engine)
        if ping_after_idle is not None and not kwargs.get("pool_pre_ping"):
            _ping_when_idle(engine, ping_after_idle)
    return engine


def _ping_when_idle(engine: AsyncEngine, after: float) -> None:
    """SQLAlchemy's `pool_pre_ping` pings on every checkout: a round trip for each of the dozen
    sessions a prompt opens (about a tenth of its database time on PostgreSQL). A connection that was
    in use a moment ago is alive; one idle for a while may have died with a database restart, so
    only that one is pinged, and replaced (the pool tries again) if the ping fails."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < after:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # whatever a dead socket raises: a new connection instead
            raise DisconnectionError(f"idle connection failed its ping ({type(exc).__name__})") from exc


def _configure_keepalive(engine: AsyncEngine) -> None:
    """SO_KEEPALIVE on this side of every connection (asyncpg has no option for it)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # asyncpg's transport is private API (asyncpg 0.29-0.32); without it only the server's keepalives apply.
        transport = getattr(getattr(dbapi_connection, "_connection", None), "_transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (
            ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
            ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
            ("TCP_KEEPCNT", KEEPALIVE_COUNT),
        ):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so "begin" below can say IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def create_session_factory(engine: AsyncEngine, bulk_slots: int | None = None) -> SessionFactory:
    """`bulk_slots`: connections bulk work may hold at once (`None`: no limit); see `bot.bulk`."""
    return SessionFactory(engine, BulkGate(bulk_slots) if bulk_slots else None)


def default_bulk_slots(url: str) -> int:
    """Leave room in the pool (see `create_engine`) for everything that is not bulk work:
    SQLite's 3 + 2 connections → 2 for bulk work (it has one writer anyway), others' 10 + 20 → 10."""
    return 2 if make_url(url).get_backend_name() == "sqlite" else 10


def alembic_config() -> Config:
    # Imported here: `python -m bot` migrates in a child process (bot/__main__.py), so Alembic and
    # Mako (about 10 MiB) never load into the long-running bot.
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["configure_logging"] = False
    return cfg


async def run_migrations(engine: AsyncEngine) -> None:
    """Upgrade to head on an existing connection (Alembic's connection-sharing recipe)."""

    from alembic import command

    def _upgrade(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


def is_in_memory(url: str) -> bool:
    """An in-memory SQLite database lives and dies with its process: no other process can migrate it."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def run_migrations_sync(url: str) -> None:
    """For `python -m bot migrate`: its own loop and engine."""

    async def _main() -> None:
        engine = create_engine(url)
        try:
            await run_migrations(engine)
        finally:
            await engine.dispose()

    asyncio.run(_main())
