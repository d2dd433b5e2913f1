"""Subscription notices: the wording follows what ended and whether /subscribe is on sale."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import ManualClock
from bot.db import SessionFactory
from bot.i18n import create_i18n
from bot.levels import Level
from bot.notifier import SubscriptionNotifier
from bot.services.audience import AudienceService
from bot.services.user_levels import LevelService
from bot.services.users import Profile, UserService
from bot.telegram import create_bot
from tests.conftest import TOKEN
from tests.fakes.telegram import FakeTelegram


async def test_notices_name_what_ended(sessions: SessionFactory, clock: ManualClock) -> None:
    users = UserService(sessions, clock, frozenset())
    levels = LevelService(users.rows)
    audience = AudienceService(users.rows)
    await users.register(Profile(id=1, first_name="Sub"))
    await users.register(Profile(id=2, first_name="Temp admin", language_code="ru"))
    await levels.set_level(1, Level.SUBSCRIBER, days=3)
    await levels.set_level(2, Level.ADMIN, days=3)
    async with FakeTelegram() as tg:
        bot = create_bot(TOKEN, tg.url)
        try:
            notifier = SubscriptionNotifier(bot, users, levels, audience, create_i18n(), clock, renewable=False)
            clock.advance(timedelta(days=2, hours=1))
            assert await notifier.check() == 1  # only the subscriber is warned
            assert (
                tg.sent_texts(1)[-1].startswith("Your subscription ends on ")
                and "/subscribe" not in tg.sent_texts(1)[-1]
            )
            assert await notifier.check() == 0
            clock.advance(timedelta(days=1))
            assert await notifier.check() == 2
            assert tg.sent_texts(1)[-1] == "Your subscription has ended."
            assert tg.sent_texts(2)[-1] == "Срок уровня «Администратор» закончился."
        finally:
            await bot.session.close()


async def test_overlapping_checks_warn_once(sessions: SessionFactory, clock: ManualClock) -> None:
    import asyncio

    users = UserService(sessions, clock, frozenset())
    levels = LevelService(users.rows)
    audience = AudienceService(users.rows)
    await users.register(Profile(id=1, first_name="Sub"))
    await levels.set_level(1, Level.SUBSCRIBER, days=3)
    clock.advance(timedelta(days=2, hours=1))
    async with FakeTelegram() as tg:
        bot = create_bot(TOKEN, tg.url)
        try:
            notifier = SubscriptionNotifier(bot, users, levels, audience, create_i18n(), clock)
            assert sum(await asyncio.gather(notifier.check(), notifier.check(), notifier.check())) == 1
            assert len(tg.sent_texts(1)) == 1
        finally:
            await bot.session.close()
