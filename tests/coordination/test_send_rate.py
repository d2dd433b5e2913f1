"""Telegram send pacing: GCRA buckets in memory and in Redis, and the bot-session middleware."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiogram import Bot
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    EditMessageText,
    GetUpdates,
    SendChatAction,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)

from bot.coordination.ratelimit import Bucket, MemorySendLimiter, SendRateLimiter, SendRates
from bot.coordination.redis_ratelimit import RedisSendLimiter
from bot.response_types import PinnedResponseTypes
from bot.telegram import RetryAfterMiddleware, SendRateMiddleware, create_bot
from tests.conftest import TOKEN
from tests.coordination.conftest import RedisFactory
from tests.fakes.telegram import FakeTelegram

BOT = 123456


class FakeTime:
    """Monotonic time that moves only when a waiter sleeps."""

    def __init__(self) -> None:
        self.now = 100.0

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def memory(rates: SendRates, fake: FakeTime) -> MemorySendLimiter:
    return MemorySendLimiter(rates, now=lambda: fake.now, sleep=fake.sleep)


async def test_a_chat_gets_its_burst_then_one_per_second() -> None:
    fake = FakeTime()
    limiter = memory(SendRates.of(1000, 1, 5), fake)
    sent = []
    for _ in range(8):
        await limiter.wait(BOT, 42)
        sent.append(fake.now - 100)
    # The first five 1 ms apart (the bot-wide bucket), then one a second.
    assert sent == pytest.approx([0, 0.001, 0.002, 0.003, 0.004, 1, 2, 3])
    fake.now += 10  # the bucket refills
    started = fake.now
    for _ in range(5):
        await limiter.wait(BOT, 42)
    assert fake.now - started == pytest.approx(0.004)


def test_the_bot_wide_rate_spaces_sends() -> None:
    fake = FakeTime()
    limiter = memory(SendRates.of(30, 1, 5), fake)
    assert [limiter.reserve(BOT, None) for _ in range(60)] == pytest.approx([i / 30 for i in range(60)])
    assert limiter.reserve(BOT + 1, None) == 0  # another bot has its own limit


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_busy_chat_does_not_hold_up_other_chats(
    backend: str, redis_factory: RedisFactory, namespace: str
) -> None:
    rates = SendRates.of(1000, 10, 2)
    limiter: SendRateLimiter = (
        MemorySendLimiter(rates) if backend == "memory" else RedisSendLimiter(await redis_factory(), namespace, rates)
    )
    started = time.monotonic()
    busy = asyncio.gather(*(limiter.wait(BOT, 42) for _ in range(6)))
    await asyncio.sleep(0.02)
    await asyncio.wait_for(limiter.wait(BOT, 43), 0.1)
    assert time.monotonic() - started < 0.15
    await busy
    assert time.monotonic() - started >= (6 - 2) / 10 - 0.02


def test_idle_chats_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.coordination.ratelimit.MAX_TRACKED_CHATS", 10)
    fake = FakeTime()
    limiter = memory(SendRates.of(1000, 1, 5), fake)
    for chat in range(11):
        limiter.reserve(BOT, chat)
        fake.now += 2
    assert len(limiter._chats) <= 2


def test_bucket_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Bucket(0)
    with pytest.raises(ValueError):
        Bucket(1, 0)


async def test_redis_two_limiters_share_one_chat_bucket(redis_factory: RedisFactory, namespace: str) -> None:
    rates = SendRates.of(1000, 10, 3)
    one = RedisSendLimiter(await redis_factory(), namespace, rates)
    two = RedisSendLimiter(await redis_factory(), namespace, rates)
    delays = [await (one if i % 2 else two).reserve(BOT, 42) for i in range(6)]
    assert delays == pytest.approx([0, 0, 0, 0.1, 0.2, 0.3], abs=0.05)
    other = RedisSendLimiter(await redis_factory(), namespace + "-other", rates)
    assert await other.reserve(BOT, 42) == 0
    assert await one.reserve(BOT, 43) == 0


async def test_redis_two_limiters_share_the_bot_wide_bucket(redis_factory: RedisFactory, namespace: str) -> None:
    rates = SendRates.of(10, 100, 5)
    one = RedisSendLimiter(await redis_factory(), namespace, rates)
    two = RedisSendLimiter(await redis_factory(), namespace, rates)
    delays = [await (one if i % 2 else two).reserve(BOT, None) for i in range(5)]
    assert delays == pytest.approx([0, 0.1, 0.2, 0.3, 0.4], abs=0.05)
    assert await one.reserve(BOT + 1, None) == 0


async def test_redis_sends_beyond_the_burst_take_the_expected_time(redis_factory: RedisFactory, namespace: str) -> None:
    rates = SendRates.of(1000, 20, 2)
    limiters = [RedisSendLimiter(await redis_factory(), namespace, rates) for _ in range(2)]
    started = time.monotonic()
    await asyncio.gather(*(limiters[i % 2].wait(BOT, 7) for i in range(6)))
    assert time.monotonic() - started >= (6 - 2) / 20 - 0.02


class Recorder:
    def __init__(self) -> None:
        self.waits: list[tuple[int, int | str]] = []

    async def wait(self, bot_id: int, chat_id: int | str) -> None:
        self.waits.append((bot_id, chat_id))


@pytest.mark.parametrize(
    "method, paced",
    [
        (SendMessage(chat_id=5, text="hi"), True),
        (SendPhoto(chat_id="@channel", photo="file-id"), True),
        (GetUpdates(), False),
        (AnswerCallbackQuery(callback_query_id="1"), False),
        (EditMessageText(chat_id=5, message_id=1, text="x"), False),
        (DeleteMessage(chat_id=5, message_id=1), False),
        (SendChatAction(chat_id=5, action="upload_photo"), False),
    ],
)
async def test_middleware_paces_only_sends_to_a_chat(method: TelegramMethod[Any], paced: bool) -> None:
    recorder = Recorder()
    middleware = SendRateMiddleware(recorder)
    bot = Bot(TOKEN)
    called: list[TelegramMethod[Any]] = []

    async def make_request(bot: Bot, method: TelegramMethod[Any]) -> Any:
        called.append(method)
        return "response"

    next_: Callable[[Bot, TelegramMethod[Any]], Awaitable[Any]] = make_request
    assert await middleware(next_, bot, method) == "response"
    assert called == [method]
    assert recorder.waits == ([(bot.id, method.chat_id)] if paced else [])  # type: ignore[attr-defined]
    await bot.session.close()


async def test_create_bot_paces_real_calls_inside_the_retry() -> None:
    async with FakeTelegram() as tg:
        bot = create_bot(TOKEN, tg.url, rate_limiter=MemorySendLimiter(SendRates.of(1000, 10, 2)))
        try:
            kinds = [type(m) for m in bot.session.middleware]
            # Outer first: a retried send waits again.
            assert kinds == [PinnedResponseTypes, RetryAfterMiddleware, SendRateMiddleware]
            for i in range(5):
                await bot.send_message(42, f"message {i}")
        finally:
            await bot.session.close()
        times = [call.time for call in tg.calls_of("sendMessage")]
    assert len(times) == 5
    assert times[-1] - times[0] >= 0.3 - 0.02  # two at once, then one per 100 ms


def test_create_bot_without_a_limiter_adds_none() -> None:
    bot = create_bot(TOKEN, "http://127.0.0.1:1")
    assert [type(m) for m in bot.session.middleware] == [PinnedResponseTypes, RetryAfterMiddleware]
