"""Counts Telegram updates by type for `imagebot_updates_total` (register as an outer update middleware)."""

from __future__ import annotations

from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

from bot.middlewares.base import NextHandler
from bot.web.metrics import Metrics


class UpdateCounter(BaseMiddleware):
    """`dp.update.outer_middleware(UpdateCounter(metrics))`: counts every update before any filter."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(self, handler: NextHandler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, Update):
            try:
                update_type = event.event_type
            except LookupError:  # a type newer than this aiogram (UpdateTypeLookupError)
                update_type = "unknown"
            self.metrics.update_received(update_type)
        return await handler(event, data)
