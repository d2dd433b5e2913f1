"""Reproduction: on PostgreSQL, a claim can find nothing while a queued job waits, and that job is stranded.

    .venv/bin/python -m benchmarks.claim_race [--prompts 50] [--rounds 10]

Plays the bot's own sequence with the real services against a throwaway database on 127.0.0.1:5432:
per prompt, `GenerationJobs.submit`, then `set_status_message` (the front end records the status
message id), then the queue message, which `Worker.handle` turns into exactly one
`GenerationJobs.claim(preferred=<its id>)`. A claim that returns None makes the worker acknowledge
its message, so a job still `queued` after every claim has returned has no message left: it waits
for the recovery sweep's "lost message" rule (JOB_REDELIVERY_TIMEOUT × 10, 10 minutes by default).

Found by `python -m benchmarks.load` (a prompt without a photo in the PostgreSQL set-up): the claim's
"oldest user job" probe locked (FOR UPDATE SKIP LOCKED) a row it did not take. Fixed in 40faed3 (claims
lock only the row they take); kept as a stress check. Exits 1 when a round strands a job. Not part of
the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import uuid
from datetime import timedelta

import asyncpg
from sqlalchemy import text

from bot.catalog import ModelId
from bot.clock import Clock
from bot.db import create_engine, create_session_factory, run_migrations
from bot.levels import Level
from bot.services.jobs import GenerationJobs, JobView
from bot.services.quota import QuotaService
from bot.services.users import Profile, UserService
from tests.conftest import make_settings

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


async def one_round(jobs: GenerationJobs, prompts: int) -> tuple[int, int, int]:
    """(claimed, claims that returned None, jobs left queued)"""
    results: list[object] = []
    claims: list[asyncio.Task[None]] = []

    async def claim(generation_id: int) -> None:
        results.append(await jobs.claim(f"worker-{generation_id}", timedelta(seconds=60), preferred=generation_id))

    async def prompt(user_id: int) -> None:
        await asyncio.sleep(random.random() * 0.05)  # updates arrive within one long poll's batch
        submitted = await jobs.submit(
            user_id=user_id, chat_id=user_id, level=Level.USER, prompt="a fox", model=ModelId.GEMINI_FLASH
        )
        assert submitted.generation_id is not None
        await asyncio.sleep(0.005)  # sendMessage (the status line)
        await jobs.set_status_message(submitted.generation_id, 1000 + user_id)
        claims.append(asyncio.create_task(claim(submitted.generation_id)))  # enqueue → Worker.handle

    await asyncio.gather(*(prompt(uid) for uid in range(1, prompts + 1)))
    await asyncio.gather(*claims)
    claimed = sum(isinstance(r, JobView) for r in results)
    return claimed, sum(r is None for r in results), prompts - claimed


async def main_async(prompts: int, rounds: int) -> int:
    name = f"imagebot_claim_race_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database="postgres", timeout=5, **PG)  # type: ignore[arg-type]
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    stranded_total = 0
    try:
        engine = create_engine(url)  # the bot's engine and pool
        await run_migrations(engine)
        sessions = create_session_factory(engine)
        settings = make_settings(url, DAILY_LIMIT_USER=1000000, INFLIGHT_CAP="user:100")
        clock = Clock("UTC")
        users = UserService(sessions, clock, frozenset())
        jobs = GenerationJobs(sessions, QuotaService(sessions, settings, clock), clock, settings)
        for uid in range(1, prompts + 1):
            await users.register(Profile(id=uid, first_name=f"U{uid}"))
        for number in range(rounds):
            claimed, nones, _ = await one_round(jobs, prompts)
            async with engine.begin() as conn:
                queued = (await conn.execute(text("SELECT count(*) FROM generations WHERE status = 'queued'"))).scalar()
                await conn.execute(text("UPDATE generations SET status = 'delivered'"))  # a clean next round
            stranded_total += int(queued or 0)
            print(
                f"round {number + 1}: {prompts} prompts, {claimed} claimed, {nones} claims found nothing, "
                f"{queued} job(s) left queued with no message"
            )
        await engine.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    print(f"stranded: {stranded_total} job(s) in {rounds} round(s)")
    return 1 if stranded_total else 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.claim_race", description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    return asyncio.run(main_async(args.prompts, args.rounds))


if __name__ == "__main__":
    sys.exit(main())
