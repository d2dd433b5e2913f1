"""The one-line hint for a flag that cannot be used: names the flag as typed and what it takes."""

from __future__ import annotations

import html

from aiogram.utils.i18n import gettext as _

from bot.prompt_flags import FlagError, FlagProblem
from bot.styles import ASPECT_RATIOS, MAX_IMAGES, NEGATIVE_MAX_CHARS, NO_STYLE, SEED_MAX, STYLES


def _takes(flag: str) -> str:
    name = flag.lstrip("-—–").lower()
    if name in ("ar", "aspect"):
        return _("one of {values}").format(values=", ".join(ASPECT_RATIOS))
    if name == "n":
        return _("a number from 1 to {max}").format(max=MAX_IMAGES)
    if name == "seed":
        return _("a whole number from 0 to {max}").format(max=SEED_MAX)
    if name == "style":
        return _("one of {values}").format(values=", ".join([NO_STYLE, *STYLES]))
    return _("words to keep out of the image, at most {max} characters").format(max=NEGATIVE_MAX_CHARS)


def flag_hint(error: FlagError) -> str:
    flag = html.escape(error.flag[:30], quote=False)
    if error.problem is FlagProblem.UNKNOWN:
        return _("⚠️ Unknown option {flag}. Options: --ar 16:9, --n 2, --seed 42, --no words, --style anime.").format(
            flag=flag
        )
    if error.problem is FlagProblem.REPEATED:
        return _("⚠️ {flag} is given twice. Nothing was charged.").format(flag=flag)
    if error.problem is FlagProblem.MISSING:
        return _("⚠️ {flag} needs a value: {takes}. Nothing was charged.").format(flag=flag, takes=_takes(error.flag))
    return _("⚠️ {flag} takes {takes}, not “{value}”. Nothing was charged.").format(
        flag=flag, takes=_takes(error.flag), value=html.escape(error.value[:30], quote=False)
    )
