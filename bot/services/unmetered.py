"""Generations made outside Telegram (CLI, HTTP) are recorded too, without a user or quota."""

from __future__ import annotations

from bot.clock import Clock
from bot.db import SessionFactory
from bot.providers.base import ModelId
from bot.services.generation import GenerationFailed, GenerationResult
from models import Generation


async def record_unmetered(
    sessions: SessionFactory,
    clock: Clock,
    *,
    prompt: str,
    model: ModelId,
    outcome: GenerationResult | GenerationFailed,
    source: str,
) -> None:
    """Record a generation made outside Telegram (CLI, HTTP): no user, no quota."""
    ok = isinstance(outcome, GenerationResult)
    async with sessions.begin() as session:
        session.add(
            Generation(
                user_id=None,
                source=source,
                prompt=prompt,
                model_requested=model.value,
                provider=outcome.first.provider if ok else None,
                model_used=outcome.first.model if ok else None,
                fallback=outcome.fallback_used if ok else False,
                attempts=[a.to_dict() for a in outcome.attempts],
                status="delivered" if ok else "failed",
                error_class=None if ok else outcome.error_class,
                latency_ms=outcome.latency_ms,
                created_at=clock.now(),
                finished_at=clock.now(),
            )
        )
