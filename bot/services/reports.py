"""Numbers for admins: one user's record and the bot's usage over a period."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import func, select

from bot.clock import Clock
from bot.db import SessionFactory
from bot.services.quota import QuotaService, QuotaStatus
from bot.services.users import UserService, UserView
from models import Generation, User


@dataclass(frozen=True, slots=True)
class GenerationLine:
    created_at: datetime
    model_requested: str
    provider: str | None
    status: str
    prompt: str


@dataclass(frozen=True, slots=True)
class UserReport:
    user: UserView
    quota: QuotaStatus
    delivered_total: int
    failed_total: int
    recent: list[GenerationLine]


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

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / self.delivered if self.delivered else 0.0


class ReportService:
    def __init__(self, sessions: SessionFactory, users: UserService, quota: QuotaService, clock: Clock) -> None:
        self._sessions = sessions
        self._users = users
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
            lines = [GenerationLine(g.created_at, g.model_requested, g.provider, g.status, g.prompt) for g in rows]
        return UserReport(
            user=user,
            quota=await self._quota.status(user.id, user.level),
            delivered_total=counts.get("delivered", 0),
            failed_total=counts.get("failed", 0),
            recent=lines,
        )

    async def stats(self, days: int = 1) -> Stats:
        """The last `days` quota days, today included."""
        since = self._start_of_today() - timedelta(days=days - 1)
        today = self._start_of_today()
        async with self._sessions() as session:
            users_total = await session.scalar(select(func.count()).select_from(User)) or 0
            active_today = await session.scalar(select(func.count()).where(User.last_seen_at >= today)) or 0
            new_users = await session.scalar(select(func.count()).where(User.created_at >= since)) or 0
            window = Generation.created_at >= since
            telegram = Generation.source == "telegram"
            delivered_q = select(Generation).where(window, telegram, Generation.status == "delivered")
            delivered_rows = list((await session.execute(delivered_q)).scalars())
            failed = (
                await session.scalar(select(func.count()).where(window, telegram, Generation.status == "failed")) or 0
            )
            top = (
                await session.execute(
                    select(User.id, User.username, User.first_name, func.count(Generation.id).label("n"))
                    .join(Generation, Generation.user_id == User.id)
                    .where(window, Generation.status == "delivered")
                    .group_by(User.id, User.username, User.first_name)
                    .order_by(func.count(Generation.id).desc(), User.id)
                    .limit(5)
                )
            ).all()
        by_model: dict[str, int] = {}
        by_provider: dict[str, int] = {}
        for row in delivered_rows:
            by_model[row.model_requested] = by_model.get(row.model_requested, 0) + 1
            provider = row.provider or "?"
            by_provider[provider] = by_provider.get(provider, 0) + 1
        latencies = [r.latency_ms for r in delivered_rows if r.latency_ms is not None]
        return Stats(
            days=days,
            since=since,
            users_total=users_total,
            active_today=active_today,
            new_users=new_users,
            by_model=by_model,
            by_provider=by_provider,
            delivered=len(delivered_rows),
            failed=failed,
            fallbacks=sum(1 for r in delivered_rows if r.fallback),
            median_latency_ms=int(statistics.median(latencies)) if latencies else None,
            top_users=[(uid, f"@{un}" if un else fn, n) for uid, un, fn, n in top],
        )
