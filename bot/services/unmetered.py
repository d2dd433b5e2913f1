"""Generations made outside Telegram (CLI, HTTP) are recorded too, without a user or quota."""

from __future__ import annotations

from bot.catalog import ModelId
from bot.clock import Clock
from bot.db import SessionFactory
from bot.services.generation import GenerationFailed, GenerationResult
from models import Generation, GenerationStatus


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
    row = Generation(
        user_id=None,
        source=source,
        prompt=prompt,
        model_requested=model.value,
        attempts=[a.to_dict() for a in outcome.attempts],
        latency_ms=outcome.latency_ms,
        created_at=clock.now(),
        finished_at=clock.now(),
    )
    if isinstance(outcome, GenerationResult):
        row.status = GenerationStatus.DELIVERED
        row.provider, row.model_used, row.fallback = outcome.first.provider, outcome.first.model, outcome.fallback_used
    else:
        row.status, row.error_class, row.fallback = GenerationStatus.FAILED, outcome.error_class, False
        refusal = outcome.refusal
        if refusal is not None:
            row.status, row.refusal_reason = GenerationStatus.REFUSED, refusal.detail[:300]
            row.provider, row.model_used = refusal.provider, refusal.model or None
    async with sessions.begin() as session:
        session.add(row)
