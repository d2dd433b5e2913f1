"""Numbers for admins: one user's record and the bot's usage over a period."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.db import SessionFactory
from bot.services.quota import QuotaService, QuotaStatus
from bot.services.users import UserView
from models import Generation, GenerationStatus, JobKind, User


@dataclass(frozen=True, slots=True)
class GenerationLine:
    created_at: datetime
    model_requested: str
    provider: str | None
    status: str
    prompt: str
    refusal_reason: str | None = None


@dataclass(frozen=True, slots=True)
class UserReport:
    user: UserView
    quota: QuotaStatus
    delivered_total: int
    failed_total: int
    recent: list[GenerationLine]
    refused_total: int = 0
    refused_today: int = 0


@dataclass(frozen=True, slots=True)
class Stats:
    days: int
    since: datetime
    users_total: int
    active_today: int
    new_users: int
    by_model: dict[str, int]  # delivered, by requested model
    by_provider: dict[str, int]  # delivered, by the provider that made them
    delivered: int
    failed: int
    fallbacks: int
    median_latency_ms: int | None
    top_users: list[tuple[int, str, int]]  # (id, name, delivered)
    refused: int = 0
    refused_by_provider: dict[str, int] = field(default_factory=dict)  # the word list counts as "word-list"

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / self.delivered if self.delivered else 0.0


@dataclass(frozen=True, slots=True)
class DayStats:
    """One quota day of generations (Telegram ones), for the /stats chart."""

    day: date
    by_provider: dict[str, int]  # delivered, by the provider that made them
    failed: int
    fallbacks: int

    @property
    def delivered(self) -> int:
        return sum(self.by_provider.values())

    @property
    def failure_rate(self) -> float:
        done = self.delivered + self.failed
        return self.failed / done if done else 0.0

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / self.delivered if self.delivered else 0.0


class ReportService:
    def __init__(self, sessions: SessionFactory, quota: QuotaService, clock: Clock) -> None:
        self._sessions = sessions
        self._quota = quota
        self._clock = clock

    def _start_of_today(self) -> datetime:
        return datetime.combine(self._clock.today(), time(0, 0), tzinfo=self._clock.tz)

    async def user_report(self, user: UserView, recent: int = 5) -> UserReport:
        async with self._sessions() as session:
            counts = dict(
                (
                    await session.execute(
                        select(Generation.status, func.count())
                        .where(Generation.user_id == user.id)
                        .group_by(Generation.status)
                    )
                ).all()
            )
            rows = (
                await session.execute(
                    select(Generation)
                    .where(Generation.user_id == user.id)
                    .order_by(Generation.created_at.desc(), Generation.id.desc())
                    .limit(recent)
                )
            ).scalars()
            lines = [
                GenerationLine(g.created_at, g.model_requested, g.provider, g.status, g.prompt, g.refusal_reason)
                for g in rows
            ]
            refused_today = await session.scalar(
                select(func.count()).where(
                    Generation.user_id == user.id,
                    Generation.status == GenerationStatus.REFUSED,
                    Generation.created_at >= self._start_of_today(),
                )
            )
        return UserReport(
            user=user,
            quota=await self._quota.status(user.id, user.level),
            delivered_total=counts.get(GenerationStatus.DELIVERED, 0),
            failed_total=counts.get(GenerationStatus.FAILED, 0),
            recent=lines,
            refused_total=counts.get(GenerationStatus.REFUSED, 0),
            refused_today=int(refused_today or 0),
        )

    async def stats(self, days: int = 1) -> Stats:
        """The last `days` quota days, today included."""
        since = self._start_of_today() - timedelta(days=days - 1)
        today = self._start_of_today()
        async with self._sessions() as session:
            users_total = await session.scalar(select(func.count()).select_from(User)) or 0
            active_today = await session.scalar(select(func.count()).where(User.last_seen_at >= today)) or 0
            new_users = await session.scalar(select(func.count()).where(User.created_at >= since)) or 0
            in_window = (Generation.created_at >= since, Generation.source == "telegram")
            # Images only: a delivered describe job is a text answer (issue 11), not a picture by its model.
            images = Generation.kind != JobKind.DESCRIBE
            delivered = (*in_window, Generation.status == GenerationStatus.DELIVERED, images)
            by_model = await _counts(session, Generation.model_requested, delivered)
            by_provider = await _counts(session, Generation.provider, delivered)
            fallbacks = await session.scalar(select(func.count()).where(*delivered, Generation.fallback.is_(True)))
            failed = await session.scalar(
                select(func.count()).where(*in_window, Generation.status == GenerationStatus.FAILED)
            )
            refused_by_provider = await _counts(
                session, Generation.provider, (*in_window, Generation.status == GenerationStatus.REFUSED)
            )
            median_latency = await _median(session, Generation.latency_ms, delivered)
            n = func.count(Generation.id).label("n")
            top = (
                await session.execute(
                    select(User.id, User.username, User.first_name, n)
                    .join(Generation, Generation.user_id == User.id)
                    .where(*delivered)
                    .group_by(User.id, User.username, User.first_name)
                    .order_by(n.desc(), User.id)
                    .limit(5)
                )
            ).all()
        return Stats(
            days=days,
            since=since,
            users_total=users_total,
            active_today=active_today,
            new_users=new_users,
            by_model=by_model,
            by_provider=by_provider,
            delivered=sum(by_model.values()),
            failed=failed or 0,
            fallbacks=fallbacks or 0,
            median_latency_ms=median_latency,
            top_users=[(uid, f"@{un}" if un else fn, count) for uid, un, fn, count in top],
            refused=sum(refused_by_provider.values()),
            refused_by_provider=refused_by_provider,
        )

    async def daily(self, days: int = 14) -> list[DayStats]:
        """The last `days` quota days, oldest first, today included; a day is midnight to midnight in
        TIMEZONE, counted by the database one day at a time (no dialect's date functions needed)."""
        today = self._clock.today()
        result: list[DayStats] = []
        async with self._sessions() as session:
            for back in range(days - 1, -1, -1):
                day = today - timedelta(days=back)
                start = datetime.combine(day, time(0, 0), tzinfo=self._clock.tz)
                end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=self._clock.tz)
                window = (Generation.created_at >= start, Generation.created_at < end, Generation.source == "telegram")
                delivered = (*window, Generation.status == GenerationStatus.DELIVERED)
                by_provider = await _counts(session, Generation.provider, delivered)
                failed = await session.scalar(
                    select(func.count()).where(*window, Generation.status == GenerationStatus.FAILED)
                )
                fallbacks = await session.scalar(select(func.count()).where(*delivered, Generation.fallback.is_(True)))
                result.append(DayStats(day, by_provider, int(failed or 0), int(fallbacks or 0)))
        return result


async def _counts(session: AsyncSession, column: Any, where: tuple[Any, ...]) -> dict[str, int]:
    """Rows per value of `column`, counted by the database."""
    rows = await session.execute(select(column, func.count()).where(*where).group_by(column))
    return {str(key) if key is not None else "?": count for key, count in rows.all()}


async def _median(session: AsyncSession, column: Any, where: tuple[Any, ...]) -> int | None:
    """The median of `column` over the rows `where` selects (None when there are none), computed by the
    database: a year of latencies must not travel into Python. Even counts average the middle two."""
    present = (*where, column.is_not(None))
    if session.get_bind().dialect.name == "postgresql":
        value = await session.scalar(select(func.percentile_cont(0.5).within_group(column)).where(*present))
        return int(value) if value is not None else None
    count = await session.scalar(select(func.count()).where(*present)) or 0
    if not count:
        return None
    # SQLite has no percentile function: the middle one or two values of the ordered column (indexed scan).
    middle = select(column).where(*present).order_by(column).limit(2 - count % 2).offset((count - 1) // 2)
    values = list((await session.execute(middle)).scalars())
    return int(sum(values) / len(values))
