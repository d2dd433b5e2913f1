"""Rendering helpers shared by handlers: localized names, safe captions, Telegram length limits."""

from __future__ import annotations

import html
from datetime import datetime
from typing import TYPE_CHECKING

from aiogram.utils.i18n import gettext as _

from bot.catalog import MODELS, ModelId
from bot.i18n import N_
from bot.levels import Level

if TYPE_CHECKING:
    from bot.services.payments import Credit
    from bot.services.user_view import UserView

CAPTION_LIMIT = 1024


def tg_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def truncate(text: str, limit: int) -> str:
    """Cut plain text to `limit` Telegram characters, marking the cut with an ellipsis."""
    if tg_len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    out = []
    used = 0
    for ch in text:
        size = tg_len(ch)
        if used + size > limit - 1:
            break
        out.append(ch)
        used += size
    return "".join(out) + "…"


FSI, PDI = "\u2068", "\u2069"  # FIRST STRONG ISOLATE ... POP DIRECTIONAL ISOLATE


def isolate(text: str) -> str:
    """HTML-escaped user text wrapped in a bidi isolate: a right-to-left override in a name or prompt
    then cannot reverse the admin's text around it. Unclosed embeddings end at the isolate's end."""
    return f"{FSI}{html.escape(text, quote=False)}{PDI}"


def user_label(user: UserView) -> str:
    """The user's name isolated (see `isolate`), then their id: how admin replies name someone."""
    return f"{isolate(user.display_name)} ({user.id})"


LEVEL_NAMES = {Level.USER: N_("User"), Level.SUBSCRIBER: N_("Subscriber"), Level.ADMIN: N_("Admin")}


def level_name(level: Level) -> str:
    return _(LEVEL_NAMES[level])


def level_with_end(level: Level, until: datetime | None, tz: object) -> str:
    """ "Subscriber until 2026-12-23 12:00 UTC", or just the level when it has no end."""
    if until is None:
        return level_name(level)
    return _("{level} until {date}").format(level=level_name(level), date=format_date(until, tz))


def credit_text(credit: Credit, tz: object) -> str:
    """What a payer hears once their days are added (by the handler, or later by the crediting loop)."""
    if credit.plan is None:
        return _("Payment received, but the plan is unknown. Please contact /paysupport.")
    if credit.user.level_until is not None:
        return _("Thank you! You are a subscriber until {date}.").format(date=format_date(credit.user.level_until, tz))
    return _("Thank you! Your payment was received.")


def start_first_text(bot_username: str) -> str:
    """Inline mode: Telegram lets a bot write only to users who started it, and the image goes there first."""
    return _(
        "To get images here, open a chat with @{bot} and press Start, then try again. Nothing was charged."
    ).format(bot=html.escape(bot_username))


def model_title(model: ModelId) -> str:
    return MODELS[model].title


def limit_text(limit: int) -> str:
    return _("unlimited") if limit == 0 else str(limit)


def format_reset(resets_at: datetime, now: datetime) -> str:
    """ "00:00 UTC (in 5 h 3 min)", in the operator's zone."""
    delta = max(int((resets_at - now).total_seconds()), 0)
    hours, minutes = delta // 3600, (delta % 3600) // 60
    zone = resets_at.tzname() or ""
    return _("{time} {zone} (in {hours} h {minutes} min)").format(
        time=resets_at.strftime("%H:%M"), zone=zone, hours=hours, minutes=minutes
    )


def format_date(moment: datetime, tz: object) -> str:
    local = moment.astimezone(tz)  # type: ignore[arg-type]
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or ''}".strip()


def fit_html(template_head: str, user_text: str, template_tail: str, limit: int, wrap: str = "{}") -> str:
    """Place escaped user text between trusted HTML parts, truncated so the visible text fits `limit`.

    `template_head`/`template_tail` are trusted HTML whose visible length we measure without tags.
    """
    visible = tg_len(_strip_tags(template_head)) + tg_len(_strip_tags(template_tail)) + tg_len(_strip_tags(wrap))
    budget = max(limit - visible + 2, 0)  # "{}" in wrap is not visible
    piece = html.escape(truncate(user_text, budget), quote=False) if budget else ""
    return template_head + wrap.format(piece) + template_tail


def _strip_tags(text: str) -> str:
    out = []
    inside = False
    for ch in text:
        if ch == "<":
            inside = True
        elif ch == ">" and inside:
            inside = False
        elif not inside:
            out.append(ch)
    return html.unescape("".join(out))
