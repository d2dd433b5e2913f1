"""A scaled deployment for end-to-end tests: webhook front ends and worker processes (``python -m bot``,
``python -m bot worker``) sharing a fresh PostgreSQL database and a Redis namespace, with the fake Bot
API and a fake Gemini running in the test's event loop on 127.0.0.1.

Only what an operator has is used to look inside: the database, Redis, each process's ``/healthz`` and
``/metrics``, its log, and what the fake Telegram received.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import TOKEN
from tests.fakes.providers import FakeGemini, FakePollinations
from tests.fakes.telegram import SECRET_HEADER, Call, FakeTelegram, FakeUser
from tests.scaled.conftest import REDIS_URL
from tests.scaled.processes import BotProcess, free_port

GEMINI_KEY = "AIza-scaled-e2e-key-0001"
WEBHOOK_SECRET = "scaled-e2e-webhook-secret"
WEBHOOK_URL = "https://bot.example.test/tg/webhook"  # what Telegram is told; the fake posts to each front end
WEBHOOK_PATH = urlsplit(WEBHOOK_URL).path
DAILY_LIMIT = 2
REDELIVERY_TIMEOUT = 3
SHUTDOWN_GRACE = 2
UNFINISHED = ("waiting", "queued", "running")


async def wait_until(
    check: Callable[[], Awaitable[Any] | Any],
    *,
    timeout: float,  # noqa: ASYNC109 - a deadline for the whole wait
    what: str,
    every: float = 0.2,
    describe: Callable[[], Awaitable[str] | str] | None = None,
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; return it. AssertionError on timeout.

    Polling (rather than waking on every fake-Telegram call) keeps the test process cheap while
    hundreds of calls arrive: it shares its event loop with the fakes the bot talks to.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = ""
            if describe is not None:
                described = describe()
                detail = "\n" + (await described if asyncio.iscoroutine(described) else str(described))
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        await asyncio.sleep(every)


class PacedGemini(FakeGemini):
    """FakeGemini that answers after ``delays[marker]`` seconds when the prompt contains ``marker``:
    one burst can hold jobs that finish inside the shutdown grace and jobs that cannot."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delays: dict[str, float] = {}

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body = (await request.read()).decode(errors="replace")
        for marker, seconds in self.delays.items():
            if marker in body:
                await asyncio.sleep(seconds)
                break
        return await super()._generate(request)


def parse_metrics(body: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text format → (name, labels, value) samples."""
    samples = []
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \S+)?", line)
        if match is None:
            continue
        name, raw_labels, value = match.groups()
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', raw_labels or ""))
        samples.append((name, labels, float(value)))
    return samples


@dataclass
class Node:
    """One bot process of the deployment and the port its /healthz (and webhook) listen on."""

    name: str
    role: str  # "front" | "worker"
    proc: BotProcess
    port: int

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def healthy(self, timeout: float = 90.0) -> str:  # noqa: ASYNC109
        return await self.proc.wait_healthy(self.port, timeout)

    async def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(f"http://127.0.0.1:{self.port}/metrics") as response,
        ):
            assert response.status == 200, f"{self.name} /metrics answered {response.status}"
            body = await response.text()
        return sum(
            value
            for sample, got, value in parse_metrics(body)
            if sample == name and all(got.get(k) == v for k, v in labels.items())
        )


@dataclass
class Cluster:
    tmp: Path
    database_url: str  # postgresql+asyncpg://…
    namespace: str
    tg: FakeTelegram
    gemini: PacedGemini
    pollinations: FakePollinations
    nodes: dict[str, Node] = field(default_factory=dict)
    _engine: AsyncEngine | None = None

    # ------------------------------------------------------------------ processes

    def env(self, **extra: str | int) -> dict[str, str]:
        closed = f"http://127.0.0.1:{free_port()}"  # HF/Replicate have no key; nothing may reach the internet
        values: dict[str, str | int] = {
            "BOT_TOKEN": TOKEN,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": REDIS_URL,
            "REDIS_NAMESPACE": self.namespace,
            "TELEGRAM_API_URL": self.tg.url,
            "GEMINI_API_KEY": GEMINI_KEY,
            "GEMINI_BASE_URL": self.gemini.url,
            "GEMINI_TIMEOUT": 20,
            "POLLINATIONS_BASE_URL": self.pollinations.url,
            "HF_ENDPOINT": closed,
            "HF_ROUTER_URL": closed,
            "REPLICATE_BASE_URL": closed,
            "DAILY_LIMIT_USER": DAILY_LIMIT,
            # No per-user cap: a user's three prompts are submitted at once and exactly two fit the limit.
            "INFLIGHT_CAP": "user:0",
            "PROVIDER_CONCURRENCY": "gemini-flash:0,pollinations:0",
            # Pacing is shared through Redis; the fake Telegram has no limits to respect.
            "TELEGRAM_RATE": 1000,
            "TELEGRAM_CHAT_RATE": 100,
            "TELEGRAM_CHAT_BURST": 100,
            "JOB_REDELIVERY_TIMEOUT": REDELIVERY_TIMEOUT,
            "SHUTDOWN_GRACE": SHUTDOWN_GRACE,
            "METRICS": 1,
            "WEB_HOST": "127.0.0.1",
            "LOG_LEVEL": "INFO",
        }
        values.update(extra)
        return {name: str(value) for name, value in values.items()}

    def _start(self, name: str, role: str, args: tuple[str, ...], **extra: str | int) -> Node:
        if name in self.nodes:
            raise ValueError(f"{name} already started")
        port = free_port()
        proc = BotProcess(
            args,
            env=self.env(WEB_PORT=port, **extra),
            name=name,
            cwd=self.tmp / name,
            log_path=self.tmp / f"{name}.log",
        ).start()
        node = self.nodes[name] = Node(name, role, proc, port)
        return node

    def start_front_end(self, name: str) -> Node:
        return self._start(
            name,
            "front",
            (),
            BOT_MODE="webhook",
            WORKERS=0,
            WEBHOOK_URL=WEBHOOK_URL,
            WEBHOOK_SECRET=WEBHOOK_SECRET,
        )

    def start_worker(self, name: str, workers: int = 8) -> Node:
        # 8 job slots per process: with 32 (and the default database pool of 5 + 10 connections) a
        # burst on two cores starves lease renewals past the 3 s lease now and then, and jobs run twice.
        return self._start(name, "worker", ("worker",), WORKERS=workers)

    async def migrate(self) -> None:
        proc = BotProcess(
            ("migrate",), env=self.env(), name="migrate", cwd=self.tmp / "migrate", log_path=self.tmp / "migrate.log"
        ).start()
        try:
            code = await proc.wait(90)
        finally:
            proc.cleanup()
        assert code == 0, f"migrate exited with {code}\n{proc.log_tail()}"

    def front_ends(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == "front" and n.proc.running]

    def workers(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == "worker" and n.proc.running]

    def logs(self, chars: int = 6000) -> str:
        return "\n".join(node.proc.log_tail(chars) for node in self.nodes.values())

    async def aclose(self) -> None:
        for node in self.nodes.values():
            node.proc.cleanup()
        if self._engine is not None:
            await self._engine.dispose()

    # ------------------------------------------------------------------ the database

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = create_async_engine(self.database_url, pool_size=2, max_overflow=2)
        return self._engine

    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            result = await conn.execute(text(sql), params)
            return [dict(row._mapping) for row in result]

    async def execute(self, sql: str, **params: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(sql), params)

    async def generations(self, user_ids: Iterable[int]) -> list[dict[str, Any]]:
        return await self.rows("SELECT * FROM generations WHERE user_id = ANY(:ids) ORDER BY id", ids=list(user_ids))

    async def units_used(self, user_ids: Iterable[int]) -> dict[int, int]:
        """daily_usage.used per user (summed over days: a test never crosses midnight in a meaningful way)."""
        rows = await self.rows(
            "SELECT user_id, SUM(used) AS used FROM daily_usage WHERE user_id = ANY(:ids) GROUP BY user_id",
            ids=list(user_ids),
        )
        return {int(r["user_id"]): int(r["used"]) for r in rows}

    async def held_by(self, node: Node) -> list[dict[str, Any]]:
        """Running jobs whose lease names this process (owner = host:pid:random)."""
        return await self.rows(
            "SELECT id, user_id, prompt, started_at, enqueued_at, "
            "extract(epoch FROM now() - started_at)::float AS age FROM generations "
            "WHERE status = 'running' AND split_part(lease_owner, ':', 2) = :pid",
            pid=str(node.pid),
        )

    async def settled(self, user_ids: Iterable[int], timeout: float) -> None:  # noqa: ASYNC109
        """Until none of these users' jobs is waiting, queued or running."""
        ids = list(user_ids)

        async def done() -> bool:
            rows = await self.rows(
                "SELECT count(*) AS n FROM generations WHERE user_id = ANY(:ids) AND status = ANY(:open)",
                ids=ids,
                open=list(UNFINISHED),
            )
            return rows[0]["n"] == 0

        await wait_until(done, timeout=timeout, what="every job to settle", describe=lambda: self.job_report(ids))

    async def job_report(self, user_ids: Iterable[int]) -> str:
        """Statuses of these users' jobs, and the unfinished ones in full: what a timed-out wait prints."""
        rows = await self.generations(user_ids)
        counts = collections.Counter(r["status"] for r in rows)
        keys = ("id", "status", "job_attempts", "lease_owner", "lease_until", "enqueued_at", "started_at")
        stuck = [{k: r[k] for k in keys} for r in rows if r["status"] in UNFINISHED]
        return f"jobs: {dict(counts)}; unfinished: {stuck[:20]}"

    async def progress(self, user_ids: Iterable[int], since: int) -> str:
        ids = list(user_ids)
        return f"{len(self.photos(ids, since))} photos so far; {await self.job_report(ids)}"

    # ------------------------------------------------------------------ Telegram, as the users see it

    def photos(self, user_ids: Iterable[int], since: int = 0) -> list[Call]:
        ids = set(user_ids)
        return [c for c in self.tg.calls_of("sendPhoto", ok=True, since=since) if c.chat_id in ids]

    def texts(self, user_id: int, since: int = 0) -> list[str]:
        return [c.result["text"] for c in self.tg.calls_of("sendMessage", ok=True, since=since, chat_id=user_id)]

    async def post_update(self, node: Node, update: Mapping[str, Any], update_id: int) -> int:
        """POST one update straight to one front end's webhook (as Telegram would through the proxy)."""
        body = json.dumps({"update_id": update_id, **update})
        headers = {"Content-Type": "application/json", SECRET_HEADER: WEBHOOK_SECRET}
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
            http.post(node.webhook, data=body, headers=headers) as response,
        ):
            await response.read()
            return response.status


def users(first_id: int, count: int, name: str) -> list[FakeUser]:
    return [FakeUser(id=first_id + n, first_name=f"{name}{n}") for n in range(count)]
