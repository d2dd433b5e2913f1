"""/apikey: a user's keys for the OpenAI-compatible HTTP API. A new key is shown once, in a code
block; the list shows each key's public prefix, when it was made and last used; buttons revoke.
Keys act as their user, so only the user's own keys are ever listed or revoked."""

from __future__ import annotations

import html
import logging

from aiogram import Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.clock import Clock
from bot.config import Settings
from bot.services.api_keys import MAX_KEYS_PER_USER, ApiKeyService, ApiKeyView, TooManyKeys
from bot.services.users import UserView
from bot.texts import format_date
from keyboards.apikey import ApiKeyButton, KeyAction, keys_keyboard

log = logging.getLogger(__name__)


def router_factory() -> Router:
    router = Router(name="apikey")
    router.message.register(on_apikey, Command("apikey"))
    router.callback_query.register(on_key_button, ApiKeyButton.filter())
    return router


async def on_apikey(
    message: Message, user: UserView, api_keys: ApiKeyService, settings: Settings, clock: Clock
) -> None:
    if not api_keys.enabled:
        await message.answer(_("The HTTP API is not enabled on this bot, so there are no API keys."))
        return
    text, markup = await _listing(user, api_keys, settings, clock)
    await message.answer(text, reply_markup=markup)


async def _listing(
    user: UserView, api_keys: ApiKeyService, settings: Settings, clock: Clock
) -> tuple[str, InlineKeyboardMarkup]:
    keys = await api_keys.list(user.id)
    lines = [
        _("<b>API keys</b>"),
        _("Use them with any OpenAI-compatible client. A key acts as you: your level and your daily limit."),
    ]
    if settings.api_public_url:
        base = html.escape(settings.api_public_url.rstrip("/") + "/v1")
        lines.append(_("Base URL: <code>{url}</code>").format(url=base))
    lines.append("")
    if keys:
        lines.extend(_key_line(key, clock) for key in keys)
    else:
        lines.append(_("You have no API keys yet."))
    new_label = _("➕ New key") if len(keys) < MAX_KEYS_PER_USER else None
    return "\n".join(lines), keys_keyboard(keys, new_label, _("🗑 Revoke {prefix}"))


def _key_line(key: ApiKeyView, clock: Clock) -> str:
    used = format_date(key.last_used_at, clock.tz) if key.last_used_at else _("never")
    return _("• <code>{key}</code> created {created}, last used {used}").format(
        key=html.escape(key.shown), created=format_date(key.created_at, clock.tz), used=used
    )


async def on_key_button(
    callback: CallbackQuery,
    callback_data: ApiKeyButton,
    user: UserView,
    api_keys: ApiKeyService,
    settings: Settings,
    clock: Clock,
) -> None:
    if not api_keys.enabled:
        await callback.answer(_("The HTTP API is not enabled on this bot, so there are no API keys."), show_alert=True)
        return
    if callback_data.action is KeyAction.NEW:
        try:
            created = await api_keys.create(user.id)
        except TooManyKeys:
            await callback.answer(
                _("You have {count} keys already; revoke one first.").format(count=MAX_KEYS_PER_USER), show_alert=True
            )
            return
        await callback.answer()
        if isinstance(callback.message, Message):
            await callback.message.answer(
                _("🔑 Your new API key. Copy it now: it is shown only this once.")
                + f"\n\n<code>{html.escape(created.key)}</code>"
            )
    else:
        revoked = await api_keys.revoke(user.id, callback_data.key_id)
        await callback.answer(_("Key revoked.") if revoked else _("That key is already revoked."))
    await _refresh(callback, user, api_keys, settings, clock)


async def _refresh(
    callback: CallbackQuery, user: UserView, api_keys: ApiKeyService, settings: Settings, clock: Clock
) -> None:
    """The list under the buttons shows the change; an old or unchanged message is left as it is."""
    if not isinstance(callback.message, Message):
        return
    text, markup = await _listing(user, api_keys, settings, clock)
    try:
        await callback.message.edit_text(text, reply_markup=markup)
    except TelegramAPIError as exc:
        log.debug("API key list not updated: %s", type(exc).__name__)
