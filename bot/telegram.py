"""The Bot object: configurable Bot API server, HTML by default, 429 handling aiogram lacks, and
optional pacing of sends so several processes together stay under Telegram's limits."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import (
    CopyMessage,
    CopyMessages,
    ForwardMessage,
    ForwardMessages,
    GetUpdates,
    SendAnimation,
    SendAudio,
    SendContact,
    SendDice,
    SendDocument,
    SendGame,
    SendInvoice,
    SendLocation,
    SendMediaGroup,
    SendMessage,
    SendPaidMedia,
    SendPhoto,
    SendPoll,
    SendSticker,
    SendVenue,
    SendVideo,
    SendVideoNote,
    SendVoice,
    TelegramMethod,
)
from aiogram.methods.base import Response, TelegramType

from bot.coordination.ratelimit import SendRateLimiter
from bot.response_types import PinnedResponseTypes

log = logging.getLogger(__name__)


class RetryAfterMiddleware(BaseRequestMiddleware):
    """Waits out Telegram's 429 `retry_after` and repeats the call, a few times, for short waits only."""

    def __init__(self, max_attempts: int = 4, max_wait: float = 60.0) -> None:
        self.max_attempts = max_attempts
        self.max_wait = max_wait

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        attempt = 1
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if isinstance(method, GetUpdates) or attempt >= self.max_attempts or exc.retry_after > self.max_wait:
                    raise
                log.warning("429 on %s: waiting %ss", type(method).__name__, exc.retry_after)
                await asyncio.sleep(exc.retry_after)
                attempt += 1


# Methods that post a new message into a chat: these count against Telegram's send limits. Edits,
# deletions, chat actions and callback answers do not queue behind them.
PACED_METHODS: tuple[type[TelegramMethod[Any]], ...] = (
    SendMessage, SendPhoto, SendDocument, SendMediaGroup, SendAnimation, SendAudio, SendVideo,
    SendVideoNote, SendVoice, SendSticker, SendLocation, SendVenue, SendContact, SendPoll, SendDice,
    SendGame, SendInvoice, SendPaidMedia, CopyMessage, CopyMessages, ForwardMessage, ForwardMessages,
)  # fmt: skip


class SendRateMiddleware(BaseRequestMiddleware):
    """Waits for the bot-wide and the per-chat bucket before each message-sending call."""

    def __init__(self, limiter: SendRateLimiter) -> None:
        self.limiter = limiter

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        chat_id = getattr(method, "chat_id", None) if isinstance(method, PACED_METHODS) else None
        if chat_id is not None:
            await self.limiter.wait(bot.id, chat_id)
        return await make_request(bot, method)


def create_bot(token: str, api_url: str, *, rate_limiter: SendRateLimiter | None = None, **session_kwargs: Any) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url), **session_kwargs)
    session.middleware(PinnedResponseTypes())  # keeps pydantic's parsed-response models cached
    session.middleware(RetryAfterMiddleware())
    if rate_limiter is not None:
        session.middleware(SendRateMiddleware(rate_limiter))  # inside the retry: a repeat is a send too
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
