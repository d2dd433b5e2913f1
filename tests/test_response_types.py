"""aiogram's `Response[T]` models survive a garbage collection when the bot's session pins them."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest
from aiogram import Bot
from aiogram.methods.base import Response
from aiogram.types import Message
from pydantic._internal import _generics

from bot.response_types import PinnedResponseTypes
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


PREMISE = """
import gc
from aiogram.methods.base import Response
from aiogram.types import Message
from pydantic._internal import _generics
built = []
original = _generics.create_generic_submodel
def spy(name, *args, **kwargs):
    built.append(name)
    return original(name, *args, **kwargs)
_generics.create_generic_submodel = spy
Response[Message]
gc.collect()
Response[Message]
print(built)
"""


def test_without_a_reference_pydantic_builds_the_response_model_again_after_a_collection() -> None:
    """The premise, in a fresh process (here, any live bot's session pins them): nothing but the pin
    keeps `Response[Message]` (if this fails, pydantic keeps them itself now and the pin can go)."""
    out = subprocess.run([sys.executable, "-c", PREMISE], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "['Response[Message]', 'Response[Message]']"


async def test_the_bots_session_keeps_them(built: list[str]) -> None:
    async with FakeTelegram() as tg:
        bot = create_bot(TOKEN, tg.url)
        try:
            rebuilt = await _send_twice_with_a_collection_between(bot, built)
            assert tg.sent_texts(42) == ["first", "second"]
            [pins] = [m for m in bot.session.middleware if isinstance(m, PinnedResponseTypes)]
            assert pins.held(Message) is Response[Message]  # the very class pydantic hands out
            assert pins.held(bool) is Response[bool]
        finally:
            await bot.session.close()
    assert rebuilt == []
