"""The scaled-test infrastructure itself: fresh databases that really go away, Redis namespaces that
leave no keys, child processes that get only what they are given and never outlive a test.

Processes here run a tiny stand-in script (``argv=``) instead of the bot, so these tests do not depend
on the bot's webhook/worker modes, which other tests cover.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from tests.scaled.conftest import (
    PG_HOST,
    PG_PORT,
    REDIS_URL,
    ServiceUnavailable,
    StartBot,
    database_exists,
    namespace_keys,
    redis_client,
    service_unavailable,
    temporary_database,
    temporary_namespace,
)
from tests.scaled.processes import BASE_ENV, BotProcess, free_port

CHILD = r"""
import http.server, json, os, signal, subprocess, sys, time

print("ENV " + json.dumps(dict(os.environ)), flush=True)
print("CWD " + os.getcwd(), flush=True)
mode = os.environ.get("MODE", "serve")
if mode == "crash":
    print("boom: bad configuration", flush=True)
    sys.exit(2)
if mode == "spawn":
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print(f"GRANDCHILD {grandchild.pid}", flush=True)
time.sleep(float(os.environ.get("DELAY", "0")))


def on_term(*_):
    print("terminating politely", flush=True)
    sys.exit(3)


signal.signal(signal.SIGTERM, on_term)
status = int(os.environ.get("STATUS", "200"))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = status if self.path == "/healthz" else 404
        body = json.dumps({"status": "ok" if code == 200 else "down"}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


print("listening", flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["WEB_PORT"])), Handler).serve_forever()
"""


@pytest.fixture
def child_script(tmp_path: Path) -> list[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return [sys.executable, str(script)]


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def logged_env(proc: BotProcess) -> dict[str, str]:
    line = next(line for line in proc.log_text().splitlines() if line.startswith("ENV "))
    return json.loads(line.removeprefix("ENV "))


def gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for init to reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def wait_gone(pid: int, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


# ---------------------------------------------------------------------- marker


def test_tests_here_carry_the_scaled_marker(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("scaled") is not None


# ---------------------------------------------------------------------- PostgreSQL


async def test_pg_url_is_a_fresh_empty_database(pg_url: str) -> None:
    assert pg_url.startswith(f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/imagebot_e2e_")
    conn = await asyncpg.connect(asyncpg_dsn(pg_url))
    try:
        name = await conn.fetchval("SELECT current_database()")
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    assert pg_url.endswith(f"/{name}") and len(name) == len("imagebot_e2e_") + 8
    assert tables == 0


async def test_temporary_database_is_dropped_even_while_a_process_holds_a_connection(pg_url: str) -> None:
    del pg_url  # only here so that a missing server skips (or fails on CI) like every scaled test
    async with temporary_database() as url:
        name = url.rsplit("/", 1)[1]
        holder = await asyncpg.connect(asyncpg_dsn(url))  # a bot process that was never stopped
        await holder.execute("CREATE TABLE jobs (id int)")
        assert await database_exists(name)
    try:
        assert not await database_exists(name)
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
            await holder.fetchval("SELECT 1")
    finally:
        await holder.close(timeout=2)


# ---------------------------------------------------------------------- Redis


async def test_redis_namespace_is_unique(redis_namespace: str) -> None:
    assert redis_namespace.startswith("imagebot_e2e_")
    async with temporary_namespace() as other:
        assert other != redis_namespace


async def test_namespace_keys_and_taskiq_streams_are_deleted_afterwards(redis_namespace: str) -> None:
    outsider = f"not_e2e_{uuid.uuid4().hex[:8]}"
    async with redis_client() as client:
        async with temporary_namespace() as ns:
            await client.set(f"{ns}:fsm:42:42:state", "Generate:prompt")
            await client.set(f"{ns}:lease:job-1", "worker-a", px=60_000)
            await client.hset(f"{ns}:taskiq:result:abc", mapping={"v": "1"})
            # What taskiq-redis's RedisStreamBroker creates at start-up: a stream with a consumer group.
            await client.xgroup_create(f"{ns}:taskiq", f"{ns}:workers", id="$", mkstream=True)
            await client.xadd(f"{ns}:taskiq", {"data": "job"})
            await client.set(outsider, "keep")
            assert len(await namespace_keys(client, ns)) == 4
        try:
            assert await namespace_keys(client, ns) == []
            assert await client.get(outsider) == b"keep"
        finally:
            await client.delete(outsider)
        # The fixture's own namespace is still there until this test ends.
        await client.set(f"{redis_namespace}:probe", "1")
        assert await namespace_keys(client, redis_namespace) == [f"{redis_namespace}:probe".encode()]


# ---------------------------------------------------------------------- services down


async def test_a_service_that_does_not_answer_skips_locally_and_fails_on_ci(
    monkeypatch: pytest.MonkeyPatch, closed_port_url: str
) -> None:
    closed_port = int(closed_port_url.rsplit(":", 1)[1])
    with pytest.raises(ServiceUnavailable, match="PostgreSQL does not answer"):
        async with temporary_database(port=closed_port):
            pass
    with pytest.raises(ServiceUnavailable, match="Redis does not answer"):
        async with temporary_namespace(f"redis://127.0.0.1:{closed_port}/0"):
            pass

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="does not answer"):
        service_unavailable("Redis does not answer")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        service_unavailable("Redis does not answer")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        service_unavailable("Redis does not answer")


def test_scaled_env_is_what_the_processes_share(scaled_env: dict[str, str]) -> None:
    assert set(scaled_env) == {"BOT_TOKEN", "DATABASE_URL", "REDIS_URL", "REDIS_NAMESPACE"}
    assert scaled_env["REDIS_URL"] == REDIS_URL
    assert scaled_env["DATABASE_URL"].startswith("postgresql+asyncpg://")


# ---------------------------------------------------------------------- processes


async def test_child_gets_a_minimal_env_runs_in_its_cwd_and_becomes_healthy(
    bot_processes: StartBot, child_script: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKY_SECRET", "from-the-developer-shell")
    port = free_port()
    started = time.monotonic()
    proc = bot_processes(argv=child_script, env={"WEB_PORT": str(port), "DELAY": "1"}, name="front-1")
    body = await proc.wait_healthy(port, timeout=20)

    assert json.loads(body) == {"status": "ok"}
    assert time.monotonic() - started >= 1  # it waited for the slow start instead of failing
    env = logged_env(proc)
    assert "LEAKY_SECRET" not in env
    assert {k: env[k] for k in BASE_ENV} == BASE_ENV
    assert env["WEB_PORT"] == str(port) and env["PATH"] == os.environ["PATH"]
    allowed = {*BASE_ENV, "PATH", "HOME", "PYTHONPATH", "WEB_PORT", "DELAY", "LC_CTYPE"}  # LC_CTYPE: PEP 538
    assert set(env) <= allowed, set(env) - allowed
    assert f"CWD {tmp_path / 'front-1'}" in proc.log_text()
    assert proc.log_path == tmp_path / "front-1.log"


async def test_terminate_then_wait_returns_the_exit_code(bot_processes: StartBot, child_script: list[str]) -> None:
    port = free_port()
    proc = bot_processes(argv=child_script, env={"WEB_PORT": str(port)})
    await proc.wait_healthy(port, timeout=20)
    with pytest.raises(TimeoutError, match="did not exit"):
        await proc.wait(0.2)
    proc.terminate()
    assert await proc.wait(10) == 3
    assert "terminating politely" in proc.log_text()


async def test_kill_is_sigkill_for_the_whole_group(bot_processes: StartBot, child_script: list[str]) -> None:
    port = free_port()
    proc = bot_processes(argv=child_script, env={"WEB_PORT": str(port), "MODE": "spawn"})
    await proc.wait_healthy(port, timeout=20)
    grandchild = int(next(x for x in proc.log_text().splitlines() if x.startswith("GRANDCHILD")).split()[1])
    assert not gone(grandchild)
    proc.kill()
    assert await proc.wait(10) == -9
    assert await wait_gone(grandchild), "a process the child started outlived the kill"


async def test_leaving_the_context_manager_cleans_everything_up(tmp_path: Path, child_script: list[str]) -> None:
    port = free_port()
    with BotProcess(argv=child_script, cwd=tmp_path / "w", env={"WEB_PORT": str(port), "MODE": "spawn"}) as proc:
        await proc.wait_healthy(port, timeout=20)
        grandchild = int(next(x for x in proc.log_text().splitlines() if x.startswith("GRANDCHILD")).split()[1])
    assert not proc.running and proc.returncode == -9
    assert await wait_gone(grandchild)


async def test_wait_healthy_fails_fast_with_the_log_when_the_process_exits(
    bot_processes: StartBot, child_script: list[str]
) -> None:
    port = free_port()
    proc = bot_processes(argv=child_script, env={"WEB_PORT": str(port), "MODE": "crash"})
    started = time.monotonic()
    with pytest.raises(AssertionError, match="exited with 2") as caught:
        await proc.wait_healthy(port, timeout=60)
    assert time.monotonic() - started < 15
    assert "boom: bad configuration" in str(caught.value)


async def test_wait_healthy_times_out_with_the_last_answer(bot_processes: StartBot, child_script: list[str]) -> None:
    port = free_port()
    proc = bot_processes(argv=child_script, env={"WEB_PORT": str(port), "STATUS": "503"})
    with pytest.raises(AssertionError, match="not healthy") as caught:
        await proc.wait_healthy(port, timeout=3)
    assert "HTTP 503" in str(caught.value) and "listening" in str(caught.value)


def test_a_dotenv_above_the_cwd_is_refused(tmp_path: Path, child_script: list[str]) -> None:
    (tmp_path / ".env").write_text("BOT_TOKEN=123:from-a-file\n")
    proc = BotProcess(argv=child_script, cwd=tmp_path / "deeper" / "still")
    with pytest.raises(RuntimeError, match=r"\.env would configure"):
        proc.start()
    assert not proc.running


async def test_the_default_command_is_python_m_bot(bot_processes: StartBot) -> None:
    """The real entry point, with nothing configured: it must say BOT_TOKEN is missing and exit 2."""
    proc = bot_processes(env={})
    assert proc.argv == [sys.executable, "-m", "bot"]
    assert await proc.wait(60) == 2, proc.log_tail()
    assert "BOT_TOKEN" in proc.log_text()
