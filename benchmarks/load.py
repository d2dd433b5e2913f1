"""Load benchmark: the real bot as processes, against two floors measured in the same run.

    .venv/bin/python -m benchmarks.load [--users 500] [--latency 2.0] [--setups sqlite,postgres,redis]
                                        [--quick] [--json PATH] [--workers N] [--profile DIR]

Everything talks to the test suite's fakes (Bot API, Gemini, Pollinations …) in a child process
(benchmarks.load_fakes); every provider answers after `--latency` seconds. Bots under test:

- floors (benchmarks.load_floors): `bare`, an aiogram bot that answers every message with one message;
  `ideal`, which answers a prompt by sleeping the provider latency and sending one photo;
- `python -m bot` with embedded SQLite; with PostgreSQL (a fresh database, migrated first); with Redis
  + PostgreSQL: a front end (WORKERS=0) and one, then two, `python -m bot worker` processes.

The bot runs its real chain: a fake GEMINI_API_KEY pointed at the Gemini fake (the users' default
model, first step of the chain, through google-genai). Limits are set so they do not shape the
figures: DAILY_LIMIT_USER 1000000, INFLIGHT_CAP user:100,subscriber:100,admin:0, PROVIDER_CONCURRENCY
0 (unlimited) for every step, TELEGRAM_RATE 1000/s with 100/s per chat, and WORKERS = --users per
process (the shipped 64 would cap one process at 64 ÷ latency prompts per second; pass --workers 64 to
see that). Times come from the fake Bot API's arrival timestamps (time.monotonic, shared by every
process on Linux); queue waits from the generations table. Memory is VmRSS from /proc/<pid>/status;
CPU time from /proc/<pid>/stat (and its main thread's, the event loop); PostgreSQL transactions from
pg_stat_database (it lags up to 10 s, so the PostgreSQL set-ups pause 10.5 s around each measured
phase). Phases per bot: warm-up (one user: /start, /help, one prompt), idle RSS; /start from every
user at once (new users); /help from every user at once (known users); then every user prompts at
once while other users send /help every 0.1 s until the last photo is out.

Each run checks itself (every prompt got exactly one photo, every generation delivered once with its
photo's message id, daily_usage units equal the photos, every command answered with its reply and
not an error notice, clean exits, no ERROR in the bots' logs) and exits non-zero, saying why, when
anything is off. --profile DIR records py-spy (if installed in the venv; not a project dependency)
for every bot process and phase, GIL-holding samples only, as collapsed stacks; it slows the bots.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.isolation import port_answers, scrub_environment

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:LOAD-benchmark-token"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
SETUPS = ("sqlite", "postgres", "redis")

WARM_USER = 900_000_001
USER_BASE = 1_000_000
PROBE_BASE = 2_000_000
PROBE_INTERVAL = 0.1  # seconds between two /help probes during a burst
PG_STATS_LAG = 10.5  # PostgreSQL 15 flushes an idle backend's statistics within 10 s


# --------------------------------------------------------------------------- small helpers


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, thread: int | None = None) -> float | None:
    """User + system CPU time a process (or one of its threads) has used so far."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    try:
        with open(path, encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


class CpuMeter:
    """CPU seconds used by some processes, and by the whole machine, between start() and stop()."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._before: dict[str, float | None] = {}
        self._loop_before: dict[str, float | None] = {}
        self._machine: tuple[float, float] = (0.0, 0.0)
        self.used: dict[str, float] = {}
        self.loop: dict[str, float] = {}  # of `used`: the main thread (the event loop)
        self.machine_busy = math.nan  # fraction of all CPUs busy

    def start(self) -> None:
        self._before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._loop_before = {name: cpu_seconds(pid, pid) for name, pid in self.pids.items()}
        self._machine = machine_cpu()

    def stop(self) -> None:
        for name, pid in self.pids.items():
            before, after = self._before.get(name), cpu_seconds(pid)
            if before is not None and after is not None:
                self.used[name] = after - before
            before, after = self._loop_before.get(name), cpu_seconds(pid, pid)
            if before is not None and after is not None:
                self.loop[name] = after - before
        busy, total = machine_cpu()
        if total > self._machine[1]:
            self.machine_busy = (busy - self._machine[0]) / (total - self._machine[1])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """A minimal environment: nothing from the developer's shell but PATH and HOME."""
    env = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    env.update(
        {
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


class Problems(list[str]):
    def add(self, text: str) -> None:
        print(f"  !! {text}", flush=True)
        self.append(text)


# --------------------------------------------------------------------------- processes


class Child:
    """One process under test, its output in a log file; stopped with SIGTERM (killed if it hangs)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.started = time.monotonic()
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_mib(self) -> float | None:
        kib = rss_kib(self.pid)
        return None if kib is None else kib / 1024

    async def stop(self, timeout: float = 30.0) -> int:  # noqa: ASYNC109
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = await asyncio.to_thread(self.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.returncode = -9
        self._log.close()
        return self.returncode

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(Exception):
            self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_findings(self) -> tuple[list[str], list[str]]:
        """(ERROR/CRITICAL/Traceback lines, WARNING lines) of its log."""
        errors, warnings = [], []
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return [], []
        for line in text.splitlines():
            if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback"):
                errors.append(line)
            elif " WARNING " in line:
                warnings.append(line)
        return errors, warnings


class Profiler:
    """py-spy (if installed) sampling the given processes while a phase runs; raw collapsed stacks."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.exe = exe if directory is not None and Path(exe).exists() else None
        self._running: list[subprocess.Popen[bytes]] = []

    def _record(self, out: Path, pid: int) -> subprocess.Popen[bytes]:
        assert self.exe is not None
        return subprocess.Popen(
            [self.exe, "record", "--gil", "--nonblocking", "--format", "raw", "-o", str(out), "--pid", str(pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @contextlib.asynccontextmanager
    async def phase(self, name: str, children: Iterable[Child]) -> Any:
        if self.exe is None or self.directory is None:
            yield
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        procs = [self._record(self.directory / f"{name}-{child.name}.txt", child.pid) for child in children]
        await asyncio.sleep(1.0)  # attaching takes a moment
        try:
            yield
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGINT)
            for proc in procs:
                try:
                    await asyncio.to_thread(proc.wait, 20)
                except subprocess.TimeoutExpired:
                    proc.kill()


# --------------------------------------------------------------------------- the fakes


class Fakes:
    """The child process of benchmarks.load_fakes and its control API."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.load_fakes"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fake servers did not start")
        self.urls: dict[str, str] = json.loads(line)
        self.control = self.urls["control"]
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Fakes:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        assert self.session is not None
        async with self.session.post(self.control + path, json=body) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def _get(self, path: str, **params: Any) -> Any:
        assert self.session is not None
        async with self.session.get(self.control + path, params={k: str(v) for k, v in params.items()}) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def reset_telegram(self) -> str:
        return str((await self._post("/telegram/reset", {}))["url"])

    async def behave(self, seconds: float) -> None:
        await self._post("/behave", {"seconds": seconds})

    async def push(self, messages: list[tuple[int, str]]) -> float:
        return float((await self._post("/push", {"messages": messages}))["t"])

    async def wait(
        self,
        method: str,
        chats: Iterable[int] | None,
        count: int,
        since: int,
        timeout: float,  # noqa: ASYNC109
    ) -> tuple[bool, int]:
        body = {
            "method": method,
            "chats": list(chats) if chats is not None else None,
            "count": count,
            "since": since,
            "timeout": timeout,
        }
        answer = await self._post("/wait", body)
        return bool(answer["ok"]), int(answer["found"])

    async def mark(self) -> int:
        return int((await self._get("/mark"))["mark"])

    async def calls(self, since: int = 0) -> list[list[Any]]:
        return list((await self._get("/calls", since=since))["calls"])

    async def polls(self) -> int:
        return int((await self._get("/polls"))["polls"])


# Compact call layout (benchmarks.load_fakes._compact)
METHOD, CHAT, TIME, STATUS, MESSAGE_ID, TEXT, HAS_FILE = range(7)


# --------------------------------------------------------------------------- databases


@dataclass
class Database:
    url: str  # SQLAlchemy URL the bot gets
    name: str | None = None  # PostgreSQL database to drop afterwards

    @classmethod
    async def postgres(cls) -> Database:
        import asyncpg

        name = f"imagebot_load_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return cls(f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}", name)

    async def transactions(self) -> tuple[int, int] | None:
        """Transactions PostgreSQL has counted in this database (None for SQLite). The counters lag:
        a backend that goes idle flushes its statistics up to PG_STATS_LAG seconds later."""
        if self.name is None:
            return None
        import asyncpg

        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=5)
        try:
            row = await conn.fetchrow(
                "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = $1", self.name
            )
        finally:
            await conn.close()
        return (int(row[0]), int(row[1])) if row is not None else (0, 0)

    async def settled_transactions(self) -> tuple[int, int] | None:
        if self.name is None:
            return None
        await asyncio.sleep(PG_STATS_LAG)
        return await self.transactions()

    async def drop(self) -> None:
        if self.name is None:
            return
        import asyncpg

        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await conn.close()

    async def read(self) -> tuple[list[dict[str, Any]], dict[int, int]]:
        """Every generation row, and daily_usage units per user (summed over days)."""
        columns = (
            "id, user_id, chat_id, status, units, job_attempts, sent_message_id, created_at, enqueued_at, started_at"
        )
        names = [c.strip() for c in columns.split(",")]
        if self.name is None:
            path = self.url.split(":///", 1)[1]
            con = sqlite3.connect(path)
            try:
                rows = [dict(zip(names, r, strict=True)) for r in con.execute(f"SELECT {columns} FROM generations")]
                usage = dict(con.execute("SELECT user_id, SUM(used) FROM daily_usage GROUP BY user_id").fetchall())
            finally:
                con.close()
            for row in rows:
                for key in ("created_at", "enqueued_at", "started_at"):
                    if row[key] is not None:
                        row[key] = datetime.fromisoformat(row[key]).replace(tzinfo=UTC)
        else:
            import asyncpg

            conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=self.name, timeout=5)
            try:
                rows = [dict(r) for r in await conn.fetch(f"SELECT {columns} FROM generations")]
                usage = {
                    r[0]: r[1] for r in await conn.fetch("SELECT user_id, SUM(used) FROM daily_usage GROUP BY user_id")
                }
            finally:
                await conn.close()
        return rows, {int(k): int(v) for k, v in usage.items()}


async def delete_redis_namespace(namespace: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{namespace}*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.unlink(*keys[start : start + 500])
    finally:
        await client.aclose()


# --------------------------------------------------------------------------- measuring


@dataclass
class Column:
    """One bot (or one stage of a bot) in the results table."""

    label: str
    values: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    users: int
    probes: int  # /help probe users (each used again once the pool is round)
    latency: float
    workers: int
    quick: bool


class Driver:
    """Drives one bot through the phases; every figure comes from the fake's timestamps."""

    def __init__(self, fakes: Fakes, plan: Plan, problems: Problems, profiler: Profiler) -> None:
        self.fakes = fakes
        self.plan = plan
        self.problems = problems
        self.profiler = profiler
        self.users = [USER_BASE + i for i in range(plan.users)]
        self.probe_users = [PROBE_BASE + i for i in range(plan.probes)]
        self.warm_photos: dict[int, int] = {}  # warm-up users and the photos they got

    async def wait_polling(self, child: Child, timeout: float = 120.0) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while await self.fakes.polls() == 0:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited with {child.proc.returncode}:\n{child.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{child.name} never polled within {timeout}s:\n{child.log_tail()}")
            await asyncio.sleep(0.1)

    async def wait_healthy(self, child: Child, port: int, timeout: float = 120.0) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        assert self.fakes.session is not None
        while True:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited with {child.proc.returncode}:\n{child.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with self.fakes.session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{child.name} not healthy within {timeout}s:\n{child.log_tail()}")
            await asyncio.sleep(0.2)

    async def warm_up(self, photo: bool) -> None:
        """One user: /start, /help and (bots that draw) one prompt, so nothing below is a first call."""
        for text, method in (("/start", "sendMessage"), ("/help", "sendMessage")):
            mark = await self.fakes.mark()
            await self.fakes.push([(WARM_USER, text)])
            ok, _ = await self.fakes.wait(method, [WARM_USER], 1, mark, 60)
            if not ok:
                raise RuntimeError(f"warm-up: no answer to {text}")
        if photo:
            mark = await self.fakes.mark()
            await self.fakes.push([(WARM_USER, "warm-up: a lighthouse at dusk")])
            ok, _ = await self.fakes.wait("sendPhoto", [WARM_USER], 1, mark, 60 + self.plan.latency)
            if not ok:
                raise RuntimeError("warm-up: the first prompt got no photo")
            self.warm_photos[WARM_USER] = 1
            await asyncio.sleep(0.5)  # let the job settle (status deleted, row finished)

    async def wait_progress(self, method: str, chats: list[int], since: int) -> tuple[bool, int, str]:
        """Until every chat has its `method`, or nothing new arrived for a while (a stuck job would
        otherwise hold the run for the whole time cap)."""
        stall = max(30.0, 5 * self.plan.latency)
        cap = 120 + 10 * self.plan.latency + len(chats) / 5
        started = last_progress = time.monotonic()
        best = 0
        while True:
            ok, found = await self.fakes.wait(method, chats, len(chats), since, 2.0)
            now = time.monotonic()
            if ok:
                return True, found, ""
            if found > best:
                best, last_progress = found, now
            if now - last_progress > stall:
                return False, best, f"none arrived in the last {stall:.0f}s"
            if now - started > cap:
                return False, best, f"time cap {cap:.0f}s"

    async def warm_prompts(self, count: int) -> None:
        """`count` new users prompt at once (a freshly started worker gets some of them)."""
        users = [WARM_USER + len(self.warm_photos) + i for i in range(count)]
        mark = await self.fakes.mark()
        await self.fakes.push([(u, "warm-up: a lighthouse at dawn") for u in users])
        ok, found = await self.fakes.wait("sendPhoto", users, count, mark, 60 + self.plan.latency)
        if not ok:
            raise RuntimeError(f"warm-up: {count - found} of {count} prompts got no photo")
        for u in users:
            self.warm_photos[u] = 1
        await asyncio.sleep(0.5)

    async def commands(
        self, text: str, users: list[int], children: Sequence[Child], phase: str, answer: str
    ) -> dict[str, Any]:
        """Every user sends `text` at once; answered per second = users ÷ (last first answer − push).
        Every answer must start with `answer` (not an error notice)."""
        cpu = CpuMeter({c.name: c.pid for c in children})
        async with self.profiler.phase(phase, children):
            mark = await self.fakes.mark()
            cpu.start()
            t0 = await self.fakes.push([(u, text) for u in users])
            ok, found = await self.fakes.wait("sendMessage", users, len(users), mark, 60 + len(users) / 5)
            cpu.stop()
        if not ok:
            self.problems.add(f"{phase}: only {found} of {len(users)} users got an answer to {text}")
        calls = await self.fakes.calls(mark)
        first = _first_times(calls, {"sendMessage"}, set(users), t0)
        wrong = [c[TEXT] for c in calls if c[METHOD] == "sendMessage" and c[CHAT] in set(users) and c[STATUS] == 200]
        wrong = [t for t in wrong if not (t or "").startswith(answer)]
        if wrong:
            self.problems.add(f"{phase}: {len(wrong)} answers to {text} were not its reply, e.g. {wrong[:2]}")
        latencies = [(t - t0) * 1000 for t in first.values()]
        wall = max(first.values()) - t0 if first else math.nan
        return {
            "per_s": len(first) / wall if first and wall > 0 else None,
            "wall_s": wall,
            "p50_ms": median(latencies),
            "p99_ms": percentile(latencies, 99),
            "cpu_ms_each": sum(cpu.used.values()) * 1000 / len(users),
            "machine_busy": cpu.machine_busy,
        }

    async def burst(self, children: Sequence[Child], *, expect: str, phase: str) -> dict[str, Any]:
        """Every user sends a prompt at once; /help probes from other users every PROBE_INTERVAL s until
        every prompt has its answer (`expect`: sendPhoto, or sendMessage for the bare bot)."""
        users = self.users
        plan = self.plan
        rss_before = {c.name: c.rss_mib() for c in children}
        peak = dict(rss_before)
        cpu = CpuMeter({c.name: c.pid for c in children} | {"fakes": self.fakes.proc.pid})
        done = asyncio.Event()
        probes: list[tuple[int, float]] = []

        async def sample() -> None:
            while not done.is_set():
                for c in children:
                    value = c.rss_mib()
                    if value is not None and (peak.get(c.name) is None or value > peak[c.name]):
                        peak[c.name] = value
                await asyncio.sleep(0.1)

        async def probe(t0: float) -> None:
            i = 0
            minimum = plan.latency + 1.0  # every bot gets probed for at least this long
            while not done.is_set() or time.monotonic() - t0 < minimum:
                user = self.probe_users[i % len(self.probe_users)]
                probes.append((user, await self.fakes.push([(user, "/help")])))
                i += 1
                await asyncio.sleep(PROBE_INTERVAL)

        async with self.profiler.phase(phase, children):
            mark = await self.fakes.mark()
            wall_start = datetime.now(UTC)
            cpu.start()
            t0 = await self.fakes.push([(u, f"a lighthouse at dusk, variation {u}") for u in users])
            sampler = asyncio.create_task(sample())
            prober = asyncio.create_task(probe(t0))
            ok, found, why = await self.wait_progress(expect, users, mark)
            cpu.stop()
            done.set()
            await prober
            await sampler
        if not ok:
            self.problems.add(f"{phase}: only {found} of {len(users)} prompts got a {expect} ({why})")
        probe_users = {u for u, _ in probes}
        per_user = defaultdict(int)
        for u, _ in probes:
            per_user[u] += 1
        # wait for every probe's answer (a probe user may have several in flight)
        deadline = time.monotonic() + 60
        calls = await self.fakes.calls(mark)
        while time.monotonic() < deadline:
            replies = _times_by_chat(calls, {"sendMessage"}, probe_users)
            if all(len(replies.get(u, [])) >= n for u, n in per_user.items()):
                break
            await asyncio.sleep(0.2)
            calls = await self.fakes.calls(mark)
        await asyncio.sleep(1.0)
        rss_after = {c.name: c.rss_mib() for c in children}
        calls = await self.fakes.calls(mark)

        answers = _first_times(calls, {expect}, set(users), t0)
        missing = len(users) - len(answers)
        wall = max(answers.values()) - t0 if answers else math.nan
        answer_ms = [(t - t0) * 1000 for t in answers.values()]
        feedback = _first_times(calls, {"sendMessage", "sendChatAction", "sendPhoto"}, set(users), t0)
        feedback_ms = [(t - t0) * 1000 for t in feedback.values()]
        probe_ms = _probe_latencies(calls, probes)
        if len(probe_ms) < len(probes):
            self.problems.add(f"{phase}: {len(probes) - len(probe_ms)} of {len(probes)} /help probes got no answer")
        texts = [c[TEXT] or "" for c in calls if c[METHOD] == "sendMessage" and c[CHAT] in set(users)]
        return {
            "wall_start": wall_start,
            "cpu": cpu,
            "prompts": len(users),
            "missing": missing,
            "t0": t0,
            "wall_s": wall,
            "per_s": len(answers) / wall if answers and wall > 0 else None,
            "answer_p50_ms": median(answer_ms),
            "answer_p99_ms": percentile(answer_ms, 99),
            "feedback_p50_ms": median(feedback_ms),
            "feedback_p99_ms": percentile(feedback_ms, 99),
            "probe_p50_ms": median(probe_ms),
            "probe_max_ms": max(probe_ms) if probe_ms else None,
            "probes": len(probes),
            "rss_before": rss_before,
            "rss_peak": peak,
            "rss_after": rss_after,
            "texts": texts,
        }


def _first_times(calls: list[list[Any]], methods: set[str], chats: set[int], t0: float) -> dict[int, float]:
    first: dict[int, float] = {}
    for c in calls:
        if c[METHOD] in methods and c[STATUS] == 200 and c[CHAT] in chats and c[TIME] >= t0:
            chat = int(c[CHAT])
            if chat not in first or c[TIME] < first[chat]:
                first[chat] = c[TIME]
    return first


def _times_by_chat(calls: list[list[Any]], methods: set[str], chats: set[int]) -> dict[int, list[float]]:
    out: dict[int, list[float]] = defaultdict(list)
    for c in calls:
        if c[METHOD] in methods and c[STATUS] == 200 and c[CHAT] in chats:
            out[int(c[CHAT])].append(c[TIME])
    for times in out.values():
        times.sort()
    return out


def _probe_latencies(calls: list[list[Any]], probes: list[tuple[int, float]]) -> list[float]:
    """The k-th answer in a probe user's chat answers that user's k-th probe."""
    replies = _times_by_chat(calls, {"sendMessage"}, {u for u, _ in probes})
    seen: dict[int, int] = defaultdict(int)
    out = []
    for user, pushed in probes:
        k = seen[user]
        seen[user] += 1
        times = replies.get(user, [])
        if k < len(times):
            out.append((times[k] - pushed) * 1000)
    return out


# --------------------------------------------------------------------------- one bot, all phases


def floor_column(label: str, reg: dict[str, Any], helps: dict[str, Any], burst: dict[str, Any], idle: float) -> Column:
    col = Column(label)
    v = col.values
    v["start_per_s"] = reg["per_s"]
    v["help_per_s"] = helps["per_s"]
    v["help_cpu_ms"] = helps["cpu_ms_each"]
    _cpu_figures(v, burst, [label], [])
    if label == "ideal":  # the bare bot sends no photo: its burst figures are only its replies
        v["missing"] = burst["missing"]
        v["burst_wall_s"] = burst["wall_s"]
        v["prompts_per_s"] = burst["per_s"]
        v["photo_p50_ms"] = burst["answer_p50_ms"]
        v["photo_p99_ms"] = burst["answer_p99_ms"]
    v["feedback_p50_ms"] = burst["feedback_p50_ms"]
    v["feedback_p99_ms"] = burst["feedback_p99_ms"]
    v["probe_p50_ms"] = burst["probe_p50_ms"]
    v["probe_max_ms"] = burst["probe_max_ms"]
    v["rss_idle_mib"] = idle
    name = label
    v["rss_peak_growth_mib"] = _growth(burst["rss_peak"], burst["rss_before"], name)
    v["rss_after_growth_mib"] = _growth(burst["rss_after"], burst["rss_before"], name)
    return col


def _cpu_figures(v: dict[str, Any], burst: dict[str, Any], fronts: list[str], workers: list[str]) -> None:
    cpu: CpuMeter = burst["cpu"]
    n = burst["prompts"]
    v["burst_cpu_front_ms"] = sum(cpu.used.get(f, 0.0) for f in fronts) * 1000 / n
    v["burst_cpu_front_loop_ms"] = sum(cpu.loop.get(f, 0.0) for f in fronts) * 1000 / n
    if workers:
        v["burst_cpu_workers_ms"] = sum(cpu.used.get(w, 0.0) for w in workers) * 1000 / n
        v["burst_cpu_workers_loop_ms"] = sum(cpu.loop.get(w, 0.0) for w in workers) * 1000 / n
    v["burst_cpu_bot_ms"] = sum(cpu.used.get(p, 0.0) for p in [*fronts, *workers]) * 1000 / n
    v["burst_cpu_fakes_ms"] = cpu.used.get("fakes", math.nan) * 1000 / n
    v["burst_machine_busy_pct"] = cpu.machine_busy * 100


def _growth(now: dict[str, float | None], before: dict[str, float | None], name: str) -> float | None:
    a, b = now.get(name), before.get(name)
    return None if a is None or b is None else a - b


async def run_floor(kind: str, ctx: Context) -> Column:
    print(f"\n== floor: {kind}", flush=True)
    tg = await ctx.fakes.reset_telegram()
    env = child_env({"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": tg, "LATENCY": str(ctx.plan.latency)})
    child = Child(kind, [sys.executable, "-m", "benchmarks.load_floors", kind], env, ctx.workdir)
    ctx.children.append(child)
    drv = Driver(ctx.fakes, ctx.plan, ctx.problems, ctx.profiler)
    try:
        await drv.wait_polling(child)
        await drv.warm_up(photo=kind == "ideal")
        await asyncio.sleep(1.0)
        idle = child.rss_mib() or math.nan
        reg = await drv.commands("/start", drv.users + drv.probe_users, [child], f"{kind}-start", "ok")
        helps = await drv.commands("/help", drv.users, [child], f"{kind}-help", "ok")
        expect = "sendPhoto" if kind == "ideal" else "sendMessage"
        burst = await drv.burst([child], expect=expect, phase=f"{kind}-burst")
    finally:
        code = await child.stop()
    if code != 0:
        ctx.problems.add(f"{kind}: exited with {code}:\n{child.log_tail()}")
    col = floor_column(kind, reg, helps, burst, idle)
    if kind == "ideal":
        calls = await ctx.fakes.calls(0)
        photos = _times_by_chat(calls, {"sendPhoto"}, set(drv.users))
        wrong = [u for u in drv.users if len(photos.get(u, [])) != 1]
        if wrong:
            ctx.problems.add(f"ideal: {len(wrong)} users did not get exactly one photo (e.g. {wrong[:5]})")
    _print_column(col)
    return col


@dataclass
class Context:
    fakes: Fakes
    plan: Plan
    problems: Problems
    profiler: Profiler
    workdir: Path
    children: list[Child] = field(default_factory=list)


def bot_env(ctx: Context, tg_url: str, database_url: str, extra: dict[str, str]) -> dict[str, str]:
    urls = ctx.fakes.urls
    env = {
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": tg_url,
        "DATABASE_URL": database_url,
        "GEMINI_API_KEY": "fake-gemini-key-for-load",
        "GEMINI_BASE_URL": urls["gemini"],
        "HF_ENDPOINT": urls["hub"],
        "HF_ROUTER_URL": urls["replicate"],
        "REPLICATE_BASE_URL": urls["replicate"],
        "POLLINATIONS_BASE_URL": urls["pollinations"],
        "DAILY_LIMIT_USER": "1000000",
        "DAILY_LIMIT_SUBSCRIBER": "1000000",
        "DAILY_LIMIT_ADMIN": "0",
        "INFLIGHT_CAP": "user:100,subscriber:100,admin:0",
        "QUEUE_MAX_PER_USER": "100",
        "PROVIDER_CONCURRENCY": "gemini-flash:0,flux-dev:0,flux-pro:0,pollinations:0",
        "TELEGRAM_RATE": "1000",
        "TELEGRAM_CHAT_RATE": "100",
        "TELEGRAM_CHAT_BURST": "100",
        "WORKERS": str(ctx.plan.workers),
        "METRICS": "1",
        "WEB_HOST": "127.0.0.1",
        "LOG_LEVEL": "INFO",
    }
    env.update(extra)
    return child_env(env)


async def run_bot(setup: str, ctx: Context) -> list[Column]:
    """The real bot in one set-up; the Redis one yields two columns (one worker, then two)."""
    print(f"\n== bot: {setup}", flush=True)
    plan, problems = ctx.plan, ctx.problems
    tg = await ctx.fakes.reset_telegram()
    db = (
        Database(f"sqlite+aiosqlite:///{ctx.workdir / f'{setup}.db'}")
        if setup == "sqlite"
        else await Database.postgres()
    )
    namespace = f"imagebot_load_{uuid.uuid4().hex[:8]}" if setup == "redis" else None
    children: list[Child] = []
    workers: list[Child] = []
    drv = Driver(ctx.fakes, plan, problems, ctx.profiler)
    columns: list[Column] = []
    bursts = 0
    try:
        common: dict[str, str] = {}
        if namespace is not None:
            common = {"REDIS_URL": REDIS_URL, "REDIS_NAMESPACE": namespace}
        if setup != "sqlite":  # a deployment migrates first
            migrate = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "bot", "migrate"],
                cwd=ctx.workdir,
                env=bot_env(ctx, tg, db.url, common),
                capture_output=True,
                text=True,
                check=False,
            )
            if migrate.returncode != 0:
                raise RuntimeError(f"migrate failed: {migrate.stdout}{migrate.stderr}")
        front_env = {**common, "WEB_PORT": str(free_port())}
        if namespace is not None:
            front_env["WORKERS"] = "0"
        front = Child(f"{setup}-front", [sys.executable, "-m", "bot"], bot_env(ctx, tg, db.url, front_env), ctx.workdir)
        children.append(front)
        ctx.children.append(front)

        async def add_worker() -> Child:
            port = free_port()
            name = f"{setup}-worker{len(workers) + 1}"
            env = bot_env(ctx, tg, db.url, {**common, "WEB_PORT": str(port)})
            worker = Child(name, [sys.executable, "-m", "bot", "worker"], env, ctx.workdir)
            children.append(worker)
            workers.append(worker)
            ctx.children.append(worker)
            await drv.wait_healthy(worker, port)
            return worker

        await drv.wait_polling(front)
        if namespace is not None:
            await add_worker()
        await drv.warm_up(photo=True)
        await asyncio.sleep(1.0)
        idle = front.rss_mib() or math.nan
        idle_workers = [w.rss_mib() or math.nan for w in workers]
        reg = await drv.commands("/start", drv.users + drv.probe_users, children, f"{setup}-start", "Hi, ")
        xacts = await db.settled_transactions()
        helps = await drv.commands("/help", drv.users, children, f"{setup}-help", "<b>How it works</b>")
        xacts_after = await db.settled_transactions()
        per_help = None
        if xacts is not None and xacts_after is not None:
            n = len(drv.users)
            per_help = tuple((after - before) / n for before, after in zip(xacts, xacts_after, strict=True))
        xacts = xacts_after

        stages = [1, 2] if namespace is not None else [0]
        for stage in stages:
            if stage == 2:
                await add_worker()
                await drv.warm_prompts(4)  # so the new worker's first job is not in the figures
                xacts = await db.settled_transactions()
            label = setup if stage == 0 else f"{setup} {stage}w"
            burst = await drv.burst(children, expect="sendPhoto", phase=f"{label.replace(' ', '-')}-burst")
            bursts += 1
            col = Column(label)
            v = col.values
            xacts_after = await db.settled_transactions()
            if xacts is not None and xacts_after is not None and per_help is not None:
                v["help_pg_commits"], v["help_pg_rollbacks"] = per_help
                v["prompt_pg_commits"], v["prompt_pg_rollbacks"] = (
                    (after - before - burst["probes"] * each) / len(drv.users)
                    for before, after, each in zip(xacts, xacts_after, per_help, strict=True)
                )
            xacts = xacts_after
            if stage <= 1:
                v["start_per_s"] = reg["per_s"]
                v["help_per_s"] = helps["per_s"]
                v["help_cpu_ms"] = helps["cpu_ms_each"]
                v["rss_idle_mib"] = idle
                if idle_workers:
                    v["worker_rss_idle_mib"] = idle_workers[0]
            _cpu_figures(v, burst, [front.name], [w.name for w in workers])
            v["missing"] = burst["missing"]
            v["burst_wall_s"] = burst["wall_s"]
            v["prompts_per_s"] = burst["per_s"]
            v["photo_p50_ms"] = burst["answer_p50_ms"]
            v["photo_p99_ms"] = burst["answer_p99_ms"]
            v["feedback_p50_ms"] = burst["feedback_p50_ms"]
            v["feedback_p99_ms"] = burst["feedback_p99_ms"]
            v["probe_p50_ms"] = burst["probe_p50_ms"]
            v["probe_max_ms"] = burst["probe_max_ms"]
            v["rss_peak_growth_mib"] = _growth(burst["rss_peak"], burst["rss_before"], front.name)
            v["rss_after_growth_mib"] = _growth(burst["rss_after"], burst["rss_before"], front.name)
            if workers:
                v["worker_rss_peak_growth_mib"] = max(
                    (_growth(burst["rss_peak"], burst["rss_before"], w.name) or 0.0) for w in workers
                )
            bad = [t for t in burst["texts"] if not t.startswith("🎨")]
            if bad:
                problems.add(f"{label}: {len(bad)} unexpected messages to prompting users, e.g. {bad[:3]}")
            rows, _usage = await db.read()
            prompted = set(drv.users)
            mine = [
                r
                for r in rows
                if r["user_id"] in prompted and r["created_at"] is not None and r["created_at"] >= burst["wall_start"]
            ]
            waits = [
                (r["started_at"] - r["enqueued_at"]).total_seconds() * 1000
                for r in mine
                if r["started_at"] is not None and r["enqueued_at"] is not None
            ]
            v["queue_p50_ms"] = median(waits)
            v["queue_p99_ms"] = percentile(waits, 99)
            if len(mine) != len(drv.users):
                problems.add(f"{label}: {len(mine)} generation rows for {len(drv.users)} prompts")
            columns.append(col)
            _print_column(col)
    finally:
        for child in reversed(children):  # workers first: the front end's recovery must not see them die
            code = await child.stop()
            if code != 0:
                problems.add(f"{child.name}: exited with {code}:\n{child.log_tail()}")
        for child in children:
            errors, warnings = child.log_findings()
            if errors:
                problems.add(f"{child.name}: {len(errors)} ERROR line(s) in its log, e.g. {errors[:3]}")
            if warnings:
                for col in columns:
                    col.notes.append(f"{child.name}: {len(warnings)} WARNING line(s), e.g. {warnings[0][:200]}")
    try:
        await verify(setup, ctx, db, drv, bursts)
    finally:
        await db.drop()
        if namespace is not None:
            await delete_redis_namespace(namespace)
    return columns


async def verify(setup: str, ctx: Context, db: Database, drv: Driver, bursts: int) -> None:
    """Every prompt: exactly one photo; every generation delivered once, with that photo's message id;
    daily_usage units = photos."""
    problems = ctx.problems
    calls = await ctx.fakes.calls(0)
    photos: dict[int, list[int]] = defaultdict(list)
    for c in calls:
        if c[METHOD] == "sendPhoto" and c[STATUS] == 200:
            photos[int(c[CHAT])].append(int(c[MESSAGE_ID]))
    failed_photos = [c for c in calls if c[METHOD] in ("sendPhoto", "sendDocument") and c[STATUS] != 200]
    if failed_photos:
        problems.add(f"{setup}: {len(failed_photos)} photo sends failed, e.g. {failed_photos[:3]}")
    expected = {u: bursts for u in drv.users} | drv.warm_photos
    wrong = {u: len(photos.get(u, [])) for u, n in expected.items() if len(photos.get(u, [])) != n}
    if wrong:
        sample = dict(list(wrong.items())[:5])
        problems.add(f"{setup}: {len(wrong)} users got a wrong number of photos (user: photos): {sample}")
    strays = set(photos) - set(expected)
    if strays:
        problems.add(f"{setup}: photos went to chats that sent no prompt: {sorted(strays)[:5]}")
    rows, usage = await db.read()
    statuses = defaultdict(int)
    for r in rows:
        statuses[r["status"]] += 1
    if set(statuses) != {"delivered"}:
        problems.add(f"{setup}: generations not all delivered: {dict(statuses)}")
    total = sum(expected.values())
    if len(rows) != total:
        problems.add(f"{setup}: {len(rows)} generation rows for {total} prompts")
    by_chat: dict[int, list[int]] = defaultdict(list)
    for r in rows:
        if r["sent_message_id"] is not None:
            by_chat[int(r["chat_id"])].append(int(r["sent_message_id"]))
    mismatched = [u for u in expected if sorted(by_chat.get(u, [])) != sorted(photos.get(u, []))]
    if mismatched:
        u = mismatched[0]
        problems.add(
            f"{setup}: {len(mismatched)} chats whose photo message ids differ from the generations' "
            f"sent_message_id (e.g. user {u}: photos {photos.get(u)}, rows {by_chat.get(u)})"
        )
    charged_wrong = {
        u: (usage.get(u, 0), len(photos.get(u, [])))
        for u in set(expected) | set(usage)
        if usage.get(u, 0) != len(photos.get(u, []))
    }
    if charged_wrong:
        sample = dict(list(charged_wrong.items())[:5])
        problems.add(f"{setup}: daily_usage ≠ photos for {len(charged_wrong)} users (user: (units, photos)): {sample}")
    retried = sum(1 for r in rows if (r["job_attempts"] or 0) > 1)
    if retried:
        problems.add(f"{setup}: {retried} generations were taken by a worker more than once")
    print(
        f"  checks: {sum(len(p) for p in photos.values())} photos, {len(rows)} generations "
        f"{dict(statuses)}, {sum(usage.values())} units charged",
        flush=True,
    )


# --------------------------------------------------------------------------- the table

# key, label, floor the ratio is taken against, digits
FIGURES: tuple[tuple[str, str, str | None, int], ...] = (
    ("start_per_s", "/start, all users at once (new users): answered per s", "bare", 0),
    ("help_per_s", "/help, all users at once (known users): commands per s", "bare", 0),
    ("missing", "prompts at once: prompts left without a photo", None, 0),
    ("burst_wall_s", "prompts at once: s until every photo is sent", "ideal", 2),
    ("prompts_per_s", "prompts per s (users ÷ that time)", "ideal", 0),
    ("photo_p50_ms", "prompt → photo, median ms", "ideal", 0),
    ("photo_p99_ms", "prompt → photo, p99 ms", "ideal", 0),
    ("feedback_p50_ms", "prompt → first visible feedback, median ms", "bare", 0),
    ("feedback_p99_ms", "prompt → first visible feedback, p99 ms", "bare", 0),
    ("probe_p50_ms", "/help during the burst, median ms", "bare", 0),
    ("probe_max_ms", "/help during the burst, worst ms", "bare", 0),
    ("help_cpu_ms", "CPU ms per /help, bot processes", "bare", 2),
    ("help_pg_commits", "PostgreSQL commits per /help", None, 1),
    ("help_pg_rollbacks", "PostgreSQL rollbacks per /help (read sessions, pre-pings)", None, 1),
    ("prompt_pg_commits", "PostgreSQL commits per prompt", None, 1),
    ("prompt_pg_rollbacks", "PostgreSQL rollbacks per prompt (read sessions, pre-pings)", None, 1),
    ("burst_cpu_bot_ms", "CPU ms per prompt, bot processes (all)", "ideal", 1),
    ("burst_cpu_front_ms", "CPU ms per prompt, front end", "ideal", 1),
    ("burst_cpu_front_loop_ms", "  of which its event-loop thread", None, 1),
    ("burst_cpu_workers_ms", "CPU ms per prompt, worker processes", None, 1),
    ("burst_cpu_workers_loop_ms", "  of which their event-loop threads", None, 1),
    ("burst_cpu_fakes_ms", "CPU ms per prompt, fake servers (context)", None, 1),
    ("burst_machine_busy_pct", "machine CPU busy during the burst, %", None, 0),
    ("queue_p50_ms", "enqueue → worker start, median ms", None, 0),
    ("queue_p99_ms", "enqueue → worker start, p99 ms", None, 0),
    ("rss_idle_mib", "RSS idle, MiB (front end)", "bare", 1),
    ("worker_rss_idle_mib", "RSS idle, MiB (a worker process)", "bare", 1),
    ("rss_peak_growth_mib", "RSS growth during the burst (peak), MiB", None, 1),
    ("rss_after_growth_mib", "RSS growth after the burst, MiB", None, 1),
    ("worker_rss_peak_growth_mib", "worker RSS growth during the burst (peak), MiB", None, 1),
)


def _fmt(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def table(columns: list[Column]) -> str:
    floors = {c.label: c for c in columns if c.label in ("bare", "ideal")}
    header = ["figure", *(c.label for c in columns)]
    body = []
    for key, label, floor, digits in FIGURES:
        if all(c.values.get(key) is None for c in columns):
            continue
        row = [label + (f"  (÷ {floor})" if floor else "")]
        for c in columns:
            value = c.values.get(key)
            cell = _fmt(value, digits)
            base = floors[floor].values.get(key) if floor in floors else None
            if value is not None and base and c.label not in ("bare", "ideal") and not math.isnan(value):
                cell += f" ({value / base:.2f}×)"
            row.append(cell)
        body.append(row)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in body)])


def _print_column(col: Column) -> None:
    shown = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in col.values.items()}
    print(f"  {col.label}: {shown}", flush=True)


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, setups: list[str], plan: Plan) -> tuple[list[Column], Problems]:
    problems = Problems()
    profiler = Profiler(Path(args.profile) if args.profile else None)
    if args.profile and profiler.exe is None:
        print("note: --profile needs py-spy in the venv (pip install py-spy); running without", flush=True)
    columns: list[Column] = []
    fakes = Fakes()
    workdir = Path(tempfile.mkdtemp(prefix="imagebot-load-"))
    ctx: Context | None = None
    try:
        async with fakes:
            await fakes.behave(plan.latency)
            ctx = Context(fakes, plan, problems, profiler, workdir)
            for kind in ("bare", "ideal"):
                columns.append(await run_floor(kind, ctx))
            for setup in setups:
                try:
                    columns.extend(await run_bot(setup, ctx))
                except RuntimeError as exc:
                    problems.add(f"{setup}: {exc}")
    finally:
        if ctx is not None:
            for child in ctx.children:
                child.kill()
        fakes.close()
        if problems:
            print(f"\nlogs kept in {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return columns, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, help="users prompting at once (default 500; 50 with --quick)")
    parser.add_argument("--latency", type=float, default=2.0, help="seconds every provider takes (default 2.0)")
    parser.add_argument("--setups", default=",".join(SETUPS), help=f"comma-separated subset of {','.join(SETUPS)}")
    parser.add_argument("--workers", type=int, default=None, help="WORKERS per bot process (default: --users)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 50 users")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--profile", metavar="DIR", help="py-spy raw stacks of every bot process per phase")
    args = parser.parse_args(argv)
    setups = [s.strip() for s in args.setups.split(",") if s.strip()]
    unknown = set(setups) - set(SETUPS)
    if unknown:
        parser.error(f"unknown set-up(s) {', '.join(sorted(unknown))}; choose from {', '.join(SETUPS)}")
    users = args.users if args.users is not None else (50 if args.quick else 500)
    if users < 1 or args.latency < 0:
        parser.error("--users must be ≥ 1 and --latency ≥ 0")
    plan = Plan(
        users=users,
        probes=20 if args.quick else 100,
        latency=args.latency,
        workers=args.workers if args.workers is not None else max(users, 1),
        quick=args.quick,
    )
    scrub_environment()
    if any(s in ("postgres", "redis") for s in setups) and not port_answers(PG_HOST, PG_PORT):
        print(f"PostgreSQL does not answer on {PG_HOST}:{PG_PORT}: drop postgres,redis from --setups", file=sys.stderr)
        return 2
    if "redis" in setups and not port_answers("127.0.0.1", 6379):
        print("Redis does not answer on 127.0.0.1:6379: drop redis from --setups", file=sys.stderr)
        return 2

    load_before = os.getloadavg()
    started = time.monotonic()
    columns, problems = asyncio.run(run(args, setups, plan))
    took = time.monotonic() - started
    load_after = os.getloadavg()
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    meta = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": cpus,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
        "users": plan.users,
        "latency_s": plan.latency,
        "workers_per_process": plan.workers,
        "probes_pool": plan.probes,
        "setups": setups,
        "took_s": round(took, 1),
    }
    print(
        f"\nimagebot load ({'quick' if plan.quick else 'default'}): {plan.users} users, provider latency "
        f"{plan.latency:g}s, WORKERS={plan.workers}/process; Python {meta['python']}, {cpus} CPU(s), "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; {took:.0f}s\n"
    )
    print(table(columns))
    notes = [n for c in columns for n in c.notes]
    if notes:
        print("\nnotes:")
        for n in dict.fromkeys(notes):
            print(f"  - {n}")
    print(
        "\nratios: ÷ the floor in the same run (bare: aiogram answering every message with one message; "
        "ideal: sleep the latency, send one photo).\n'first visible feedback': the first sendMessage / "
        "sendChatAction / sendPhoto in the user's chat (the bare bot's is its reply)."
    )
    if args.json:
        payload = {"meta": meta, "columns": [_json_ready({"label": c.label, **c.values}) for c in columns]}
        payload["problems"] = list(problems)
        Path(args.json).write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
        print(f"\nwrote {args.json}")
    if problems:
        print(f"\nFAILED: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
