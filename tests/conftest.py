"""Shared fixtures: an isolated environment, a movable clock, a migrated SQLite file per test."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import AliasChoices
from sqlalchemy import text

from bot.clock import ManualClock
from bot.config import Settings
from bot.db import SessionFactory, create_engine, create_session_factory, run_migrations


def settings_env_names() -> tuple[str, ...]:
    """Every variable `Settings` reads, from its fields' aliases: a new setting is scrubbed without a list to edit."""
    names: list[str] = []
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.append(alias)
        elif isinstance(alias, AliasChoices):
            names.extend(choice for choice in alias.choices if isinstance(choice, str))
    return tuple(names)


ENV_NAMES = settings_env_names()

# Read by the SDKs (google-genai, huggingface_hub, httpx) themselves, not through `Settings`.
IMPLICIT_ENV = (
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_GENAI_API_VERSION",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_HUB_OFFLINE",
    "HF_ENDPOINT",
    "HUGGINGFACE_API_KEY",
    "HF_API_KEY",
    "REPLICATE_API_TOKEN",
    "POLLINATIONS_API_KEY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)

START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TOKEN = "123456:TEST-token-abcdef"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No real key or endpoint from the developer's shell can leak into a test."""
    for name in (*ENV_NAMES, *IMPLICIT_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"


def make_settings(db_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"BOT_TOKEN": TOKEN, "DATABASE_URL": db_url}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[SessionFactory]:
    engine = create_engine(db_url)
    await run_migrations(engine)
    yield create_session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def pg_sessions() -> AsyncIterator[SessionFactory]:
    url = postgres_url()
    if url is None:
        if os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}:
            pytest.fail("PostgreSQL is not running on 127.0.0.1:5432 (CI must run this test, not skip it)")
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    # TEST_PG_DATABASE lets two checkouts run the suite at once without sharing a schema.
    database = os.environ.get("TEST_PG_DATABASE", "imagebot_test")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database})
        if not exists:
            await conn.execute(text(f'CREATE DATABASE "{database}"'))
    await admin.dispose()
    engine = create_engine(url.rsplit("/", 1)[0] + "/" + database)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await run_migrations(engine)
    yield create_session_factory(engine)
    await engine.dispose()


def postgres_url() -> str | None:
    """The local PostgreSQL (trust auth, database `test`) when it answers, else None."""
    url = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return url
    except OSError:
        return None


def _is_loopback(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return host == "localhost"
    return True  # AF_UNIX and friends


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Refuse (and remember) any connection attempt that is not to 127.0.0.1 / ::1."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            attempts.append(address)
            raise ConnectionRefusedError(f"test guard: no network beyond loopback ({address!r})")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_loopback(address):
            attempts.append(address)
            raise ConnectionRefusedError(f"test guard: no network beyond loopback ({address!r})")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield attempts
    assert not attempts, f"a provider tried to leave 127.0.0.1: {attempts}"


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
