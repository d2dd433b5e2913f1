"""/stats' median latency is computed by the database (percentile_cont on PostgreSQL, an ordered
OFFSET on SQLite), not by loading a year of latencies into Python."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from bot.clock import ManualClock
from bot.config import Settings
from bot.db import SessionFactory
from bot.services.quota import QuotaService
from bot.services.reports import ReportService
from bot.services.users import Profile, UserService
from models import Generation, GenerationStatus
from tests.conftest import make_settings


async def _seed(sessions: SessionFactory, clock: ManualClock, latencies: list[int | None]) -> ReportService:
    settings: Settings = make_settings("sqlite+aiosqlite://")
    users = UserService(sessions, clock, frozenset())
    await users.register(Profile(id=1, first_name="Ann"))
    async with sessions.begin() as session:
        for n, latency in enumerate(latencies):
            session.add(
                Generation(
                    user_id=1,
                    chat_id=1,
                    prompt=f"p{n}",
                    model_requested="gemini-flash",
                    provider="gemini",
                    status=GenerationStatus.DELIVERED,
                    latency_ms=latency,
                    created_at=clock.now() - timedelta(days=n % 3),
                )
            )
        # Failures and older rows do not count.
        session.add(
            Generation(
                user_id=1, prompt="f", model_requested="gemini-flash", status=GenerationStatus.FAILED,
                latency_ms=1, created_at=clock.now(),
            )
        )  # fmt: skip
        session.add(
            Generation(
                user_id=1, prompt="old", model_requested="gemini-flash", status=GenerationStatus.DELIVERED,
                latency_ms=1, created_at=clock.now() - timedelta(days=400),
            )
        )  # fmt: skip
    return ReportService(sessions, QuotaService(sessions, settings, clock), clock)


@contextmanager
def statements(sessions: SessionFactory) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = sessions.engine.sync_engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


CASES = [
    ([300, 100, 200], 200),
    ([400, 100, 10000, 200], 300),  # even: the mean of the middle two
    ([7], 7),
    ([None, 5, None, 9], 7),  # rows without a latency are left out
    ([], None),
    ([None], None),
]


async def _check(sessions: SessionFactory, clock: ManualClock, latencies: list[int | None], median: int | None) -> None:
    reports = await _seed(sessions, clock, latencies)
    with statements(sessions) as seen:
        stats = await reports.stats(365)
    assert stats.median_latency_ms == median
    # No statement fetches the latencies themselves: each one that returns them aggregates or is bounded.
    returning = [s for s in seen if "latency_ms" in s.upper().split("FROM", 1)[0].lower()]
    assert returning or median is None
    assert all("percentile_cont" in s or "LIMIT" in s.upper() for s in returning), returning


@pytest.mark.parametrize("latencies, median", CASES)
async def test_median_latency_on_sqlite(
    sessions: SessionFactory, clock: ManualClock, latencies: list[int | None], median: int | None
) -> None:
    await _check(sessions, clock, latencies, median)


@pytest.mark.postgres
@pytest.mark.parametrize("latencies, median", CASES[:2] + CASES[3:5])
async def test_median_latency_on_postgres(
    pg_sessions: SessionFactory, clock: ManualClock, latencies: list[int | None], median: int | None
) -> None:
    await _check(pg_sessions, clock, latencies, median)
