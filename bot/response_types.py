"""Keep aiogram's `Response[T]` models alive, so a Bot API call does not build one again.

aiogram parametrises `Response[method.__returning__]` on every call. pydantic caches parametrised
generic models only in a `WeakValueDictionary`; nothing else holds them, so each garbage collection
drops them and the next call builds the model and its validator again (a few milliseconds of CPU).
Under a crowd of updates that was about 6% of the bot's CPU (py-spy, README "The whole bot under a
crowd"). Holding one strong reference per return type keeps pydantic's cache warm.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType


class PinnedResponseTypes(BaseRequestMiddleware):
    """A session middleware: the first call of each return type builds its `Response[T]`, and keeps it."""

    def __init__(self) -> None:
        self._pinned: dict[Any, type[Response[Any]]] = {}

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in self._pinned:
            self._pinned[returning] = Response[returning]  # type: ignore[valid-type]
        return await make_request(bot, method)

    def held(self, returning: Any) -> type[Response[Any]] | None:
        """The model held for a return type, once a call returned it."""
        return self._pinned.get(returning)
