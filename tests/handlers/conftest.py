"""Handler tests: updates fed through the real Dispatcher (dp.feed_update), replies going to the fake
Bot API over HTTP, providers replaced by scripted stubs (the providers have their own tests)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import Update

from bot.app import Services, attach_worker, build_services, create_dispatcher
from bot.clock import ManualClock
from bot.i18n import create_i18n
from bot.telegram import create_bot
from tests.conftest import TOKEN, make_settings
from tests.fakes.telegram import FakeTelegram
from tests.support import StubProvider, default_stubs


@dataclass
class BotUnderTest:
    tg: FakeTelegram
    bot: Bot
    dp: Dispatcher
    services: Services
    stubs: dict[str, StubProvider]
    _ids: Any

    async def feed(self, update: dict[str, Any], *, settle: bool = True) -> Any:
        """Handle the update, then (unless told not to) let the in-process workers finish its jobs."""
        update = {"update_id": next(self._ids), **update}
        result = await self.dp.feed_update(self.bot, Update.model_validate(update, context={"bot": self.bot}))
        if settle:
            await self.services.queue.drained()
        return result


@pytest.fixture
async def make_bot(db_url: str, clock: ManualClock) -> AsyncIterator[Callable[..., Any]]:
    made: list[BotUnderTest] = []

    async def factory(**env: Any) -> BotUnderTest:
        tg = await FakeTelegram().start()
        stubs = default_stubs()
        services = await build_services(make_settings(db_url, **env), clock, providers=list(stubs.values()))
        bot = create_bot(TOKEN, tg.url)
        i18n = create_i18n()
        dp = create_dispatcher(services, i18n)
        attach_worker(services, bot, i18n)
        under_test = BotUnderTest(tg, bot, dp, services, stubs, itertools.count(1))
        made.append(under_test)
        return under_test

    yield factory
    for item in made:
        await item.bot.session.close()
        await item.services.aclose()
        await item.tg.stop()
