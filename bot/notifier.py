"""Subscription housekeeping: warn a day before the end, and tell users when it has ended.

Runs at start-up and then every few minutes, so a bot that was down still warns.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.utils.i18n import I18n

from bot.clock import Clock
from bot.i18n import pick_locale
from bot.levels import Level
from bot.services.audience import AudienceService
from bot.services.user_levels import LevelService
from bot.services.users import UserService
from bot.texts import format_date, level_name

log = logging.getLogger(__name__)

WARN_BEFORE = timedelta(days=1)
CHECK_EVERY_SECONDS = 300.0


class SubscriptionNotifier:
    def __init__(
        self,
        bot: Bot,
        users: UserService,
        levels: LevelService,
        audience: AudienceService,
        i18n: I18n,
        clock: Clock,
        *,
        renewable: bool = True,
    ) -> None:
        self._bot = bot
        self._users = users
        self._levels = levels
        self._audience = audience
        self._i18n = i18n
        self._clock = clock
        self._renewable = renewable  # /subscribe is on sale: worth pointing to

    async def check(self) -> int:
        """One pass; returns how many messages were sent."""
        sent = 0
        for user in await self._levels.expiring_soon(WARN_BEFORE):
            assert user.level_until is not None
            if not await self._levels.claim_expiry_warning(user.id, user.level_until):
                continue  # another check got there first: once is enough
            if self._renewable:
                text = self._i18n.gettext(
                    "Your subscription ends on {date}. Renew it with /subscribe to keep FLUX Pro and the higher limit.",
                    locale=pick_locale(user.language_code),
                )
            else:
                text = self._i18n.gettext("Your subscription ends on {date}.", locale=pick_locale(user.language_code))
            text = text.format(date=format_date(user.level_until, self._clock.tz))
            if await self._send(user.id, text):
                sent += 1
        for user_id, old_level in await self._levels.expire_levels():
            ended = await self._users.get(user_id)
            if ended is not None and ended.is_banned:
                continue  # a banned user hears nothing more from the bot (the warning skips them too)
            if await self._send(user_id, self._ended_text(old_level, ended.language_code if ended else None)):
                sent += 1
        return sent

    def _ended_text(self, old_level: Level, language_code: str | None) -> str:
        locale = pick_locale(language_code)
        if old_level is not Level.SUBSCRIBER:  # a timed grant by an admin, not something sold
            with self._i18n.context(), self._i18n.use_locale(locale):
                return self._i18n.gettext("Your {level} level has ended.", locale=locale).format(
                    level=level_name(old_level)
                )
        if self._renewable:
            return self._i18n.gettext("Your subscription has ended. /subscribe renews it.", locale=locale)
        return self._i18n.gettext("Your subscription has ended.", locale=locale)

    async def _send(self, user_id: int, text: str) -> bool:
        try:
            await self._bot.send_message(user_id, text)
            return True
        except TelegramForbiddenError:
            await self._audience.set_blocked(user_id, True)
        except TelegramAPIError as exc:
            log.info("subscription notice to %s failed: %s", user_id, type(exc).__name__)
        return False

    async def run_forever(self, every: float = CHECK_EVERY_SECONDS) -> None:
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("subscription check failed")
            await asyncio.sleep(every)
