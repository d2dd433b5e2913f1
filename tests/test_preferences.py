"""The settings store on SQLite and PostgreSQL: defaults without a row, upserts, partial changes, bad values."""

from __future__ import annotations

import asyncio

import pytest

from bot.clock import ManualClock
from bot.db import SessionFactory
from bot.services.preferences import Preferences, PreferenceService
from bot.services.users import Profile, UserService


async def _check(sessions: SessionFactory, clock: ManualClock) -> None:
    await UserService(sessions, clock, frozenset()).register(Profile(id=1, first_name="Ann"))
    prefs = PreferenceService(sessions, clock)
    assert await prefs.get(1) == Preferences()
    # Two quick taps at once: one row, both changes kept.
    await asyncio.gather(prefs.update(1, aspect_ratio="3:2"), prefs.update(1, count=4))
    assert await prefs.get(1) == Preferences(aspect_ratio="3:2", count=4)
    assert await prefs.update(1, seed=2**31 - 1, negative_prompt="  blur  ") == Preferences(
        aspect_ratio="3:2", count=4, seed=2**31 - 1, negative_prompt="blur"
    )
    assert (await prefs.update(1, negative_prompt="   ")).negative_prompt is None
    for bad in ({"aspect_ratio": "5:4"}, {"count": 5}, {"seed": -1}, {"style": "vaporwave"}, {"level": "admin"}):
        with pytest.raises(ValueError):
            await prefs.update(1, **bad)
    assert await prefs.reset(1) == Preferences()


async def test_preferences_on_sqlite(sessions: SessionFactory, clock: ManualClock) -> None:
    await _check(sessions, clock)


async def test_preferences_on_postgres(pg_sessions: SessionFactory, clock: ManualClock) -> None:
    await _check(pg_sessions, clock)
