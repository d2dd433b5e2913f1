"""aiogram's `Response[T]` models survive a garbage collection when the bot's session pins them."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from pydantic._internal import _generics

from bot.telegram import create_bot
from tests.conftest import TOKEN
from tests.fakes.telegram import FakeTelegram


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Names of the generic models pydantic builds while the test runs."""
    names: list[str] = []
    original = _generics.create_generic_submodel

    def spy(name: str, *args: object, **kwargs: object) -> object:
        names.append(name)
        return original(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_generics, "create_generic_submodel", spy)
    yield names


async def _send_twice_with_a_collection_between(bot: Bot, built: list[str]) -> list[str]:
    await bot.send_message(42, "first")
    await bot.send_chat_action(42, "typing")
    gc.collect()
    built.clear()
    await bot.send_message(42, "second")
    await bot.send_chat_action(42, "typing")
    return list(built)


async def test_a_bare_session_builds_the_response_model_again_after_a_collection(built: list[str]) -> None:
    """The premise: without the pin pydantic forgets `Response[Message]` (if this fails, pydantic keeps
    them itself now and `PinnedResponseTypes` can go)."""
    async with FakeTelegram() as tg:
        bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.url)))
        try:
            rebuilt = await _send_twice_with_a_collection_between(bot, built)
        finally:
            await bot.session.close()
    assert "Response[Message]" in rebuilt
    assert "Response[bool]" in rebuilt


async def test_the_bots_session_keeps_them(built: list[str]) -> None:
    async with FakeTelegram() as tg:
        bot = create_bot(TOKEN, tg.url)
        try:
            rebuilt = await _send_twice_with_a_collection_between(bot, built)
            assert tg.sent_texts(42) == ["first", "second"]
        finally:
            await bot.session.close()
    assert rebuilt == []
