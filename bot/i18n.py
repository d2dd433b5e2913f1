"""Locale from the user's Telegram language (IETF tag, often absent): mapped by prefix, English fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject
from aiogram.types import User as TgUser
from aiogram.utils.i18n import I18n, I18nMiddleware

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
SUPPORTED = ("en", "ru")
DEFAULT_LOCALE = "en"


def N_(msgid: str) -> str:
    """Marks a catalogue entry for extraction where the locale is only known later."""
    return msgid


def pick_locale(language_code: str | None) -> str:
    if not language_code:
        return DEFAULT_LOCALE
    prefix = language_code.replace("_", "-").split("-", 1)[0].lower()
    return prefix if prefix in SUPPORTED else DEFAULT_LOCALE


def create_i18n() -> I18n:
    return I18n(path=LOCALES_DIR, default_locale=DEFAULT_LOCALE, domain="messages")


class LocaleMiddleware(I18nMiddleware):
    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        user = data.get("user")
        if user is not None:
            return pick_locale(user.language_code)
        tg_user: TgUser | None = data.get("event_from_user")
        return pick_locale(tg_user.language_code if tg_user else None)
