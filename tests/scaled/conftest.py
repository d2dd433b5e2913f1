"""Fixtures for scaled end-to-end tests: a fresh PostgreSQL database and a Redis namespace per test,
and bot processes that are always killed.

Every test under tests/scaled gets the ``scaled`` marker. When PostgreSQL or Redis does not answer, a
test is skipped on a developer machine but **fails** when ``CI`` is set: CI must never pass by skipping
the only tests that run several processes against the real services.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import NoReturn

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tests.conftest import TOKEN
from tests.scaled.processes import BotProcess

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
SCALED_DIR = Path(__file__).resolve().parent


class ServiceUnavailable(Exception):
    """PostgreSQL or Redis did not answer; the fixtures turn it into a skip, or a failure on CI."""


def running_on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def service_unavailable(message: str) -> NoReturn:
    """Fail on CI (a silent skip there would hide a broken set-up), skip elsewhere."""
    if running_on_ci():
        pytest.fail(f"{message} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(message)


# ---------------------------------------------------------------------- marker


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in this folder ``scaled`` before ``-m`` deselects (so ``-m "not scaled"`` works)."""
    for item in items:
        if SCALED_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.scaled)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Remember whether the test body failed, so ``bot_processes`` can print the logs of a failure."""
    report = yield
    if call.when == "call":
        item.stash[_FAILED] = bool(getattr(report, "failed", False))
    return report


_FAILED = pytest.StashKey[bool]()


# ---------------------------------------------------------------------- PostgreSQL


async def _admin_connection(host: str | None, port: int | None) -> asyncpg.Connection:
    """Read PG_HOST/PG_PORT at call time, so a test can point everything at a dead port."""
    host, port = host or PG_HOST, port or PG_PORT
    try:
        return await asyncpg.connect(host=host, port=port, user=PG_USER, database="postgres", timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise ServiceUnavailable(
            f"PostgreSQL does not answer on {host}:{port} as {PG_USER!r} (trust auth expected): {exc}"
        ) from exc


async def drop_database(name: str, *, host: str | None = None, port: int | None = None) -> None:
    """Drop ``name`` even while bot processes are still connected: their sessions are ended first."""
    conn = await _admin_connection(host, port)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def database_exists(name: str, *, host: str | None = None, port: int | None = None) -> bool:
    conn = await _admin_connection(host, port)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


@asynccontextmanager
async def temporary_database(*, host: str | None = None, port: int | None = None) -> AsyncIterator[str]:
    """A new empty database ``imagebot_e2e_<8 hex>``; yields its SQLAlchemy URL, drops it on exit.

    Raises :class:`ServiceUnavailable` when the server does not answer.
    """
    name = f"imagebot_e2e_{uuid.uuid4().hex[:8]}"
    conn = await _admin_connection(host, port)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield f"postgresql+asyncpg://{PG_USER}@{host or PG_HOST}:{port or PG_PORT}/{name}"
    finally:
        await drop_database(name, host=host, port=port)


@asynccontextmanager
async def available(resource: AbstractAsyncContextManager[str]) -> AsyncIterator[str]:
    """Enter a temporary database or namespace; if the service is down, skip (or fail on CI)."""
    async with AsyncExitStack() as stack:
        try:
            value = await stack.enter_async_context(resource)
        except ServiceUnavailable as exc:
            down = str(exc)
        else:
            down = None
        if down is not None:
            service_unavailable(down)  # outside the except: the report is one line, not a chain
        yield value


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """``postgresql+asyncpg://postgres@127.0.0.1:5432/imagebot_e2e_<uuid8>``: fresh, dropped after."""
    async with available(temporary_database()) as url:
        yield url


# ---------------------------------------------------------------------- Redis


async def namespace_keys(client: aioredis.Redis, namespace: str) -> list[bytes]:
    """Every key that starts with ``namespace`` (``<ns>:fsm:…``, the taskiq stream ``<ns>:…`` and its
    consumer groups, which live inside the stream key)."""
    return [key async for key in client.scan_iter(match=f"{namespace}*", count=1000)]


async def delete_namespace(client: aioredis.Redis, namespace: str) -> int:
    """Delete every key of ``namespace``; return how many there were."""
    keys = await namespace_keys(client, namespace)
    for start in range(0, len(keys), 500):
        await client.unlink(*keys[start : start + 500])
    return len(keys)


@asynccontextmanager
async def redis_client(url: str | None = None) -> AsyncIterator[aioredis.Redis]:
    """A client that has answered PING; :class:`ServiceUnavailable` otherwise. Default: REDIS_URL."""
    url = url or REDIS_URL
    client = aioredis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
    try:
        try:
            await client.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            raise ServiceUnavailable(f"Redis does not answer at {url}: {exc}") from exc
        yield client
    finally:
        await client.aclose()


@asynccontextmanager
async def temporary_namespace(url: str | None = None) -> AsyncIterator[str]:
    """A unique ``REDIS_NAMESPACE`` (``imagebot_e2e_<8 hex>``); its keys are deleted on exit."""
    async with redis_client(url) as client:
        namespace = f"imagebot_e2e_{uuid.uuid4().hex[:8]}"
        try:
            yield namespace
        finally:
            await delete_namespace(client, namespace)


@pytest.fixture
async def redis_namespace() -> AsyncIterator[str]:
    """A unique namespace for ``REDIS_NAMESPACE``; afterwards every ``<ns>*`` key is deleted."""
    async with available(temporary_namespace()) as namespace:
        yield namespace


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


# ---------------------------------------------------------------------- processes


@pytest.fixture
def scaled_env(pg_url: str, redis_namespace: str) -> dict[str, str]:
    """What every process of one deployment shares; add TELEGRAM_API_URL, BOT_MODE, WEB_PORT… per process."""
    return {
        "BOT_TOKEN": TOKEN,
        "DATABASE_URL": pg_url,
        "REDIS_URL": REDIS_URL,
        "REDIS_NAMESPACE": redis_namespace,
    }


StartBot = Callable[..., BotProcess]


@pytest.fixture
def bot_processes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StartBot]:
    """A factory: ``start(*args, env=..., name=..., argv=None, cwd=None) -> BotProcess`` (already started).

    Each process runs in ``tmp_path/<name>`` (no .env), logs to ``tmp_path/<name>.log``, and is killed
    after the test; when the test failed, every log tail is printed (pytest shows it with the failure).
    """
    started: list[BotProcess] = []

    def start(
        *args: str,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        argv: Sequence[str] | None = None,
        cwd: Path | None = None,
    ) -> BotProcess:
        label = name or "-".join(["bot", *args])
        if any(p.name == label for p in started):
            label = f"{label}-{len(started)}"
        proc = BotProcess(
            args,
            env=env,
            name=label,
            argv=argv,
            cwd=cwd or tmp_path / label,
            log_path=tmp_path / f"{label}.log",
        )
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.cleanup()
    if request.node.stash.get(_FAILED, False):
        for proc in started:
            print(f"\n{proc!r}\n{proc.log_tail(8000)}")
