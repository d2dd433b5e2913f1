"""Admin alerts about a user whose prompts keep being refused: more than REFUSAL_ALERT in a quota day
gets one message to every admin, with a button to ban. The "once a day" is claimed in the database
(`RefusalService.claim_alert`) before anything is sent, so restarts and parallel workers never repeat it.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import I18n

from bot.i18n import pick_locale
from bot.services.audience import AudienceService
from bot.services.refusals import RefusalService
from bot.services.users import UserService
from bot.texts import isolate
from keyboards.moderation import ban_button

log = logging.getLogger(__name__)


class RefusalAlerts:
    def __init__(
        self,
        bot: Bot,
        i18n: I18n,
        refusals: RefusalService,
        users: UserService,
        audience: AudienceService,
        threshold: int,
    ) -> None:
        self._bot = bot
        self._i18n = i18n
        self._refusals = refusals
        self._users = users
        self._audience = audience
        self._threshold = threshold  # 0 = no alerts

    async def after_refusal(self, user_id: int) -> bool:
        """Called after a refused job is settled; True when this call alerted the admins."""
        if self._threshold <= 0:
            return False
        count = await self._refusals.today(user_id)
        if count <= self._threshold or not await self._refusals.claim_alert(user_id):
            return False
        user = await self._users.get(user_id)
        who = f"{isolate(user.display_name)} ({user_id})" if user is not None else str(user_id)
        for admin_id, language in await self._audience.admin_contacts():
            locale = pick_locale(language)
            text = self._i18n.gettext(
                "⚠️ {who} has had {count} prompts refused by content filters today. /user {id} shows them.",
                locale=locale,
            ).format(who=who, count=count, id=user_id)
            label = self._i18n.gettext("🚫 Ban", locale=locale)
            try:
                await self._bot.send_message(admin_id, text, reply_markup=ban_button(user_id, label))
            except TelegramAPIError as exc:  # one unreachable admin must not keep the others uninformed
                log.info("refusal alert to admin %s not delivered: %s", admin_id, type(exc).__name__)
        log.info("user %s: %d refusals today; admins alerted", user_id, count)
        return True
