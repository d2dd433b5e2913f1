"""A user's image options (/settings): stored per user, handed out as a frozen view.

No row means the defaults; the first change writes one (an upsert, so two quick taps cannot race
into a duplicate key). Per-prompt flags override the stored values (`Preferences.options`).
Adding a setting: a column (and migration), a field here, a row in keyboards/settings.py.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from bot.clock import Clock
from bot.db import SessionFactory
from bot.prompt_flags import Overrides
from bot.providers.base import ImageOptions
from bot.services.sql import insert_for
from bot.styles import ASPECT_RATIOS, MAX_IMAGES, NEGATIVE_MAX_CHARS, NO_STYLE, SEED_MAX, STYLES
from models import UserPreferences


@dataclass(frozen=True, slots=True)
class Preferences:
    aspect_ratio: str = "1:1"
    count: int = 1
    seed: int | None = None  # None: random every time
    negative_prompt: str | None = None
    style: str = NO_STYLE

    def options(self, overrides: Overrides | None = None) -> ImageOptions:
        """The options of one prompt: its flags where given, these settings elsewhere."""
        o = overrides or Overrides()
        style = o.style if o.style is not None else self.style
        return ImageOptions(
            aspect_ratio=o.aspect_ratio or self.aspect_ratio,
            count=o.count or self.count,
            seed=o.seed if o.seed is not None else self.seed,
            negative_prompt=o.negative_prompt or self.negative_prompt,
            style=None if style == NO_STYLE else style,
        )


DEFAULTS = Preferences()
_NAMES = frozenset(f.name for f in fields(Preferences))


def check(changes: dict[str, Any]) -> None:
    """ValueError for a value the settings cannot hold (handlers only offer valid ones; a forged
    callback or a typed seed may not)."""
    for name, value in changes.items():
        if name not in _NAMES:
            raise ValueError(f"unknown setting {name}")
        if name == "aspect_ratio" and value not in ASPECT_RATIOS:
            raise ValueError("aspect ratio")
        if name == "count" and (not isinstance(value, int) or not 1 <= value <= MAX_IMAGES):
            raise ValueError("count")
        if name == "seed" and value is not None and (not isinstance(value, int) or not 0 <= value <= SEED_MAX):
            raise ValueError("seed")
        if name == "negative_prompt" and value is not None and len(value) > NEGATIVE_MAX_CHARS:
            raise ValueError("negative prompt")
        if name == "style" and value != NO_STYLE and value not in STYLES:
            raise ValueError("style")


class PreferenceService:
    def __init__(self, sessions: SessionFactory, clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def get(self, user_id: int) -> Preferences:
        async with self._sessions() as session:
            return stored(await session.get(UserPreferences, user_id))

    async def update(self, user_id: int, **changes: Any) -> Preferences:
        """Set some settings (the rest keep their values); returns the settings as they now stand."""
        check(changes)
        if "negative_prompt" in changes:
            changes["negative_prompt"] = (changes["negative_prompt"] or "").strip() or None
        now = self._clock.now()
        async with self._sessions.begin() as session:
            initial = {f.name: getattr(DEFAULTS, f.name) for f in fields(Preferences)}
            stmt = insert_for(session, UserPreferences).values(
                user_id=user_id, **{**initial, **changes}, updated_at=now
            )
            stmt = stmt.on_conflict_do_update(index_elements=["user_id"], set_={**changes, "updated_at": now})
            await session.execute(stmt)
            row = await session.get(UserPreferences, user_id, populate_existing=True)
            assert row is not None
            return stored(row)

    async def reset(self, user_id: int) -> Preferences:
        return await self.update(user_id, **{f.name: getattr(DEFAULTS, f.name) for f in fields(Preferences)})


def stored(row: UserPreferences | None) -> Preferences:
    """The view of a user's row (None: they never changed a setting, so the defaults)."""
    if row is None:
        return DEFAULTS
    return replace(
        DEFAULTS,
        aspect_ratio=row.aspect_ratio,
        count=row.count,
        seed=row.seed,
        negative_prompt=row.negative_prompt,
        style=row.style,
    )
