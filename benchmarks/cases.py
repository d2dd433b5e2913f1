"""The benchmark cases. Imported by benchmarks.run after the fake servers' process is started, so the
two processes' imports (aiogram, google-genai, huggingface_hub... several seconds) overlap."""

from __future__ import annotations

import itertools
import logging
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiogram import Bot, Dispatcher
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import Update
from sqlalchemy import func, select, text

from benchmarks.harness import Result, measure_memory, time_concurrent, time_sequential
from benchmarks.isolation import port_answers
from bot.app import Services, build_services, create_dispatcher
from bot.catalog import ModelId
from bot.clock import ManualClock
from bot.db import SessionFactory, create_engine, create_session_factory, run_migrations
from bot.levels import Level
from bot.logs import setup_logging
from bot.providers.base import ErrorKind, ImageOptions
from bot.providers.flux_dev import FluxDevProvider
from bot.providers.flux_pro import PRO_MODEL, FluxProProvider
from bot.providers.gemini import GeminiProvider
from bot.providers.pollinations import PollinationsProvider
from bot.services.generation import GenerationRequest, GenerationResult, GenerationService
from bot.services.quota import QuotaService
from bot.services.users import Profile, UserService
from bot.telegram import create_bot
from models import DailyUsage, Generation
from tests.conftest import START, TOKEN, make_settings
from tests.fakes.telegram import FakeTelegram, FakeUser
from tests.support import default_stubs

PG_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "imagebot_bench"
GEMINI_KEY = "AIza-bench-gemini-key-0001"
HF_KEY = "hf_bench_token_0002"
REPLICATE_KEY = "r8_bench_token_0003"
GEMINI_MODEL = "gemini-3.1-flash-image"
PROMPT = "a lighthouse at dusk, oil painting"
CONCURRENCY = 50
QUOTA_USERS = 50


@dataclass(frozen=True)
class Plan:
    """Iteration counts: (default, --quick). `cap` bounds any single benchmark's timed pass in seconds."""

    quick: bool

    def n(self, default: int, quick: int) -> int:
        return quick if self.quick else default

    @property
    def cap(self) -> float:
        return 0.6 if self.quick else 5.0


class LogWatch(logging.Handler):
    """Counts WARNING+ records, so a benchmark that silently measured an error path is flagged."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.last = f"{record.levelname} {record.name}: {record.getMessage()[:140]}"

    def reset(self) -> None:
        self.count, self.last = 0, ""


class Suite:
    def __init__(self, plan: Plan, tmp: Path, urls: dict[str, str], watch: LogWatch) -> None:
        self.plan = plan
        self.tmp = tmp
        self.urls = urls
        self.watch = watch
        self.results: list[Result] = []
        self.failed = False

    # -- plumbing ---------------------------------------------------------------------------
    def add(self, result: Result, *, warnings_expected: bool = False) -> Result:
        if self.watch.count and not warnings_expected:
            result.note = "; ".join(
                p for p in (result.note, f"{self.watch.count} warning(s) logged, last: {self.watch.last}") if p
            )
        self.watch.reset()
        self.results.append(result)
        return result

    async def sequential(
        self,
        name: str,
        op: Callable[[], Awaitable[Any]],
        n: tuple[int, int],
        *,
        memory: tuple[int, int] | None = None,
        warmup: int = 5,
        warnings_expected: bool = False,
    ) -> Result:
        result = Result(name)
        self.watch.reset()
        await time_sequential(result, op, self.plan.n(*n), warmup=warmup, max_seconds=self.plan.cap)
        if memory is not None:
            await measure_memory(result, op, self.plan.n(*memory))
        return self.add(result, warnings_expected=warnings_expected)

    async def group(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        started = time.perf_counter()
        try:
            await body()
        except Exception as exc:
            self.failed = True
            self.results.append(Result(f"{name} (group)", skipped=f"FAILED: {type(exc).__name__}: {exc}"[:300]))
            logging.getLogger("benchmarks").exception("group %s failed", name)
        print(f"  {name}: {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)

    # -- 1. quota ---------------------------------------------------------------------------
    async def quota(self) -> None:
        await self._quota_on("sqlite", f"sqlite+aiosqlite:///{self.tmp / 'quota.db'}")
        if not port_answers("127.0.0.1", 5432):
            self.add(Result("quota.postgres.*", skipped="nothing answers on 127.0.0.1:5432"))
            return
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)"))
                await conn.execute(text(f"CREATE DATABASE {PG_BENCH_DB}"))
        except Exception as exc:
            await admin.dispose()
            self.add(Result("quota.postgres.*", skipped=f"cannot create {PG_BENCH_DB}: {type(exc).__name__}"))
            return
        try:
            await self._quota_on("postgres", PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_BENCH_DB}")
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)"))
            await admin.dispose()

    async def _quota_on(self, backend: str, url: str) -> None:
        engine = create_engine(url)
        try:
            await run_migrations(engine)
            sessions = create_session_factory(engine)
            clock = ManualClock(START)
            users = UserService(sessions, clock, frozenset())
            for uid in range(1, QUOTA_USERS + 1):
                await users.register(Profile(id=uid, first_name=f"User {uid}"))
            # A limit no run reaches: every reservation takes the conditional-upsert path and succeeds.
            quota = QuotaService(sessions, make_settings(url, DAILY_LIMIT_USER=10**9), clock)
            await self._quota_cases(backend, quota, sessions, clock)
        finally:
            await engine.dispose()

    async def _quota_cases(
        self, backend: str, quota: QuotaService, sessions: SessionFactory, clock: ManualClock
    ) -> None:
        taken = 0
        # Releases walk the users in the same order as the reservations, so each one finds a unit.
        reserve_order = itertools.cycle(range(1, QUOTA_USERS + 1))
        release_order = itertools.cycle(range(1, QUOTA_USERS + 1))
        day = clock.today()

        async def reserve(uid: int | None = None) -> None:
            nonlocal taken
            if await quota.reserve(uid if uid is not None else next(reserve_order), Level.USER) is None:
                raise AssertionError("a reservation was refused")
            taken += 1

        async def release() -> None:
            nonlocal taken
            await quota.release(next(release_order), day)
            taken -= 1

        prefix = f"quota.{backend}"
        await self.sequential(f"{prefix}.reserve sequential", reserve, (300, 20))
        await self.sequential(f"{prefix}.release sequential", release, (300, 20))
        cases = (("50 users", lambda i: i % QUOTA_USERS + 1), ("1 user", lambda i: 1))
        for index, (label, pick) in enumerate(cases):
            result = Result(f"{prefix}.reserve x{CONCURRENCY} concurrent, {label}")
            self.watch.reset()
            await time_concurrent(
                result,
                lambda i, pick=pick: lambda: reserve(pick(i)),
                CONCURRENCY,
                self.plan.n(6, 1),
                warmup=1 if index == 0 else 0,  # one untimed batch grows the connection pool
                max_seconds=self.plan.cap,
            )
            self.add(result)
        async with sessions() as session:
            stored = (await session.execute(select(func.coalesce(func.sum(DailyUsage.used), 0)))).scalar_one()
        if stored != taken:
            raise AssertionError(f"{backend}: {stored} units stored, {taken} expected")

    # -- 2. generation chain ----------------------------------------------------------------
    async def generation(self) -> None:
        stubs = default_stubs()
        service = GenerationService(list(stubs.values()))
        direct = GenerationRequest(PROMPT, ModelId.GEMINI_FLASH, Level.USER)

        def forget_calls() -> None:  # StubProvider records every call; keep that out of the memory figures
            for stub in stubs.values():
                stub.calls.clear()

        async def stub_alone() -> None:
            await stubs["gemini"].generate(ModelId.GEMINI_FLASH, PROMPT, ImageOptions())
            forget_calls()

        async def hit() -> None:
            outcome = await service.generate(direct)
            if not isinstance(outcome, GenerationResult) or outcome.first.step is not ModelId.GEMINI_FLASH:
                raise AssertionError(f"direct hit expected, got {outcome}")
            forget_calls()

        async def two_fallbacks() -> None:
            # Gemini Flash fails, FLUX Dev fails, Pollinations answers (FLUX Pro is above a user's level).
            stubs["gemini"].outcomes = [ErrorKind.UNAVAILABLE]
            stubs["hf"].outcomes = [ErrorKind.TIMEOUT]
            outcome = await service.generate(direct)
            if not isinstance(outcome, GenerationResult) or outcome.first.step is not ModelId.POLLINATIONS:
                raise AssertionError(f"two fallbacks expected, got {outcome}")
            if len(outcome.attempts) != 3:
                raise AssertionError(f"3 attempts expected, got {outcome.attempts}")
            forget_calls()

        n, mem = (2000, 200), (200, 20)
        await self.sequential("generation.stub provider alone (baseline)", stub_alone, n, memory=mem)
        await self.sequential("generation.direct hit", hit, n, memory=mem)
        await self.sequential("generation.two fallbacks", two_fallbacks, n, memory=mem, warnings_expected=True)

    # -- 3. updates through the real Dispatcher ---------------------------------------------
    async def dispatcher(self) -> None:
        db_url = f"sqlite+aiosqlite:///{self.tmp / 'dispatcher.db'}"
        settings = make_settings(db_url, TELEGRAM_API_URL=self.urls["telegram"], DAILY_LIMIT_USER=10**9)
        stubs = default_stubs()
        services = await build_services(settings, ManualClock(START), providers=list(stubs.values()))
        bot = create_bot(TOKEN, self.urls["telegram"])
        try:
            await self._dispatcher_cases(services, create_dispatcher(services), bot, stubs)
        finally:
            await bot.session.close()
            await services.aclose()

    async def _dispatcher_cases(self, services: Services, dp: Dispatcher, bot: Bot, stubs: dict[str, Any]) -> None:
        builder = FakeTelegram()  # never started: it only builds updates the way the tests do
        update_ids = itertools.count(1)
        new_ids = itertools.count(100_000)
        known = [FakeUser(id=1000 + i, first_name=f"Known {i}", username=f"known{i}") for i in range(20)]
        known_cycle = itertools.cycle(known)

        async def feed(update: dict[str, Any]) -> None:
            parsed = Update.model_validate({"update_id": next(update_ids), **update}, context={"bot": bot})
            if await dp.feed_update(bot, parsed) is UNHANDLED:
                raise AssertionError(f"update not handled: {update}")
            for stub in stubs.values():  # StubProvider records its calls: not the bot's memory
                stub.calls.clear()

        def feeder(make: Callable[[], dict[str, Any]], count: int) -> Callable[[], Awaitable[None]]:
            """Updates are built up front, so neither the builder's time nor its memory is measured."""
            prepared: Iterator[dict[str, Any]] = iter([make() for _ in range(count)])

            async def op() -> None:
                await feed(next(prepared))

            return op

        def new_start() -> dict[str, Any]:
            uid = next(new_ids)
            return builder.message(FakeUser(id=uid, first_name=f"New {uid}", username=f"new{uid}"), "/start")

        for user in known:
            await feed(builder.message(user, "/start"))

        def prompt() -> dict[str, Any]:
            return builder.message(next(known_cycle), PROMPT)

        cases: list[tuple[str, Callable[[], dict[str, Any]], int]] = [
            ("dispatcher./start, new user", new_start, self.plan.n(200, 10)),
            (
                "dispatcher./start, known user",
                lambda: builder.message(next(known_cycle), "/start"),
                self.plan.n(200, 10),
            ),
            ("dispatcher.prompt -> photo", prompt, self.plan.n(120, 10)),
        ]
        warmup, mem = self.plan.n(5, 3), self.plan.n(40, 4)
        fed_prompts = 0
        for name, make, n in cases:
            result = Result(name)
            self.watch.reset()
            await time_sequential(result, feeder(make, warmup + n), n, warmup=warmup, max_seconds=self.plan.cap)
            await measure_memory(result, feeder(make, mem), mem, settle=forget_recent_updates)
            if make is prompt:
                fed_prompts = warmup + result.iterations + mem
            self.add(result)
        async with services.sessions() as session:
            delivered = (
                await session.execute(select(func.count()).where(Generation.status == "delivered"))
            ).scalar_one()
        if delivered != fed_prompts:
            raise AssertionError(f"{delivered} generations delivered, {fed_prompts} prompts fed")

    # -- 4. provider adapters against the fakes ---------------------------------------------
    async def providers(self) -> None:
        urls = self.urls
        gemini = GeminiProvider(GEMINI_KEY, GEMINI_MODEL, urls["gemini"], 10)
        flux_dev = FluxDevProvider(HF_KEY, urls["hub"], urls["replicate"], 10)
        flux_pro = FluxProProvider(HF_KEY, REPLICATE_KEY, urls["replicate"], urls["replicate"], 10)
        flux_pro.poll_interval = 0.01
        pollinations = PollinationsProvider(None, urls["pollinations"], 10)
        raw = httpx.AsyncClient(timeout=10)
        options = ImageOptions(seed=7)

        async def adapter(provider: Any, model: ModelId) -> None:
            image = await provider.generate(model, PROMPT, options)
            if not image.data:
                raise AssertionError(f"{provider.name} returned no image")

        async def raw_pollinations() -> None:
            r = await raw.get(
                f"{urls['pollinations']}/prompt/a%20lighthouse",
                params={"width": 1024, "height": 1024, "seed": 7, "model": "flux", "nologo": "true"},
            )
            r.raise_for_status()

        async def raw_gemini() -> None:
            r = await raw.post(
                f"{urls['gemini']}/v1/models/{GEMINI_MODEL}:generateContent",
                headers={"x-goog-api-key": GEMINI_KEY},
                json={"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]},
            )
            r.raise_for_status()

        async def raw_replicate() -> None:
            r = await raw.post(
                f"{urls['replicate']}/v1/models/{PRO_MODEL}/predictions",
                headers={"Authorization": f"Bearer {REPLICATE_KEY}", "Prefer": "wait"},
                json={"input": {"prompt": PROMPT}},
            )
            r.raise_for_status()
            (await raw.get(r.json()["output"])).raise_for_status()

        n, mem = (150, 10), (20, 3)
        try:
            await self.sequential("providers.raw httpx: pollinations GET (baseline)", raw_pollinations, n, memory=mem)
            await self.sequential(
                "providers.pollinations (keyless)",
                lambda: adapter(pollinations, ModelId.POLLINATIONS),
                n,
                memory=mem,
            )
            await self.sequential("providers.raw httpx: gemini POST (baseline)", raw_gemini, n, memory=mem)
            await self.sequential(
                "providers.gemini (google-genai)", lambda: adapter(gemini, ModelId.GEMINI_FLASH), n, memory=mem
            )
            await self.sequential("providers.raw httpx: replicate POST + file (baseline)", raw_replicate, n, memory=mem)
            await self.sequential(
                "providers.hf-replicate flux-pro (httpx, direct)",
                lambda: adapter(flux_pro, ModelId.FLUX_PRO),
                n,
                memory=mem,
            )
            await self.sequential(
                "providers.hf-replicate flux-dev (huggingface_hub, thread)",
                lambda: adapter(flux_dev, ModelId.FLUX_DEV),
                n,
                memory=mem,
            )
        finally:
            await raw.aclose()
            for provider in (gemini, flux_dev, flux_pro, pollinations):
                await provider.aclose()


def forget_recent_updates() -> None:
    """aiogram caches `Update.event_type` with functools.lru_cache(maxsize=128), which keeps the last
    128 Update objects alive. Bounded, so not a leak; emptied around memory passes so it is not
    counted as growth."""
    Update.event_type.fget.cache_clear()  # type: ignore[attr-defined]


# -- running ----------------------------------------------------------------------------------


def quiet_logging(watch: LogWatch) -> None:
    """The bot's own logging set-up (format + secret masking), writing to /dev/null: its cost is real."""
    settings = make_settings(
        "sqlite+aiosqlite://", GEMINI_API_KEY=GEMINI_KEY, HF_TOKEN=HF_KEY, REPLICATE_API_TOKEN=REPLICATE_KEY
    )
    setup_logging(settings)
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - lives for the process
    root.addHandler(watch)
    errors = logging.StreamHandler(sys.stderr)
    errors.setLevel(logging.ERROR)
    logging.getLogger("benchmarks").addHandler(errors)


async def run_suite(plan: Plan, groups: list[str], urls: dict[str, str]) -> Suite:
    """Run the named groups (quota, generation, dispatcher, providers) in that order."""
    watch = LogWatch()
    quiet_logging(watch)
    with tempfile.TemporaryDirectory(prefix="imagebot-bench-") as tmp:
        suite = Suite(plan, Path(tmp), urls, watch)
        for name in ("quota", "generation", "dispatcher", "providers"):
            if name in groups:
                await suite.group(name, getattr(suite, name))
    return suite
