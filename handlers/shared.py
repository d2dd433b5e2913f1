"""Checks that more than one router makes before it acts: no router of its own.

A model pressed on a picker (the model picker, 🔀 Other model) and the user read fresh before a job is
submitted (a prompt, a result button, an edit).
"""

from __future__ import annotations

from aiogram.types import CallbackQuery
from aiogram.utils.i18n import gettext as _

from bot.catalog import MODELS, ModelId, ModelSpec
from bot.services.preferences import Preferences
from bot.services.users import UserService, UserView
from bot.texts import level_name


async def pickable_model(callback: CallbackQuery, raw: str, user: UserView) -> ModelSpec | None:
    """The model a picker button names, if it exists, is offered and the user's level holds it; else
    the callback is answered with why not (callback data comes from the client: never trusted)."""
    try:
        spec = MODELS.get(ModelId(raw))
    except ValueError:
        spec = None
    if spec is None or not spec.pickable:
        await callback.answer(_("This model does not exist."), show_alert=True)
        return None
    if not user.level.allows(spec.min_level):
        await callback.answer(
            _("🔒 {model} is available from the {level} level.").format(
                model=spec.title, level=level_name(spec.min_level)
            ),
            show_alert=True,
        )
        return None
    return spec


async def fresh_user(users: UserService, user: UserView) -> UserView | None:
    """The user as the database has them now, for what is charged and which model runs (the
    middleware's view may come from the cache); None when they are gone or banned meanwhile (then the
    cache forgets them, and the next update says so). This read waits for the bulk gate."""
    fresh = await users.get(user.id)
    return _usable(users, user.id, fresh)


async def fresh_prompter(users: UserService, user: UserView) -> tuple[UserView, Preferences] | None:
    """`fresh_user` with their /settings, read in the same query (a typed prompt needs both)."""
    found = await users.get_with_preferences(user.id)
    if _usable(users, user.id, found[0] if found is not None else None) is None:
        return None
    return found


def _usable(users: UserService, user_id: int, fresh: UserView | None) -> UserView | None:
    if fresh is None or fresh.is_banned:
        users.forget(user_id)
        return None
    return fresh
