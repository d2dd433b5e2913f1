"""The user-view cache through the real Dispatcher: a command from someone seen a moment ago needs no
database read; what this process changes is seen at once; a prompt always reads the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from bot.catalog import ModelId
from bot.clock import ManualClock
from bot.levels import Level
from models import Generation, User
from tests.fakes.telegram import FakeUser
from tests.sql_trace import statements

ANN = FakeUser(id=811, first_name="Ann", username="ann")
ROOT = FakeUser(id=812, first_name="Root")
BotFactory = Callable[..., Any]


async def _behind_our_back(b: Any, **values: Any) -> None:
    """A write as another instance would make it: straight to the database, not through this process."""
    async with b.services.sessions.begin() as session:
        await session.execute(update(User).where(User.id == ANN.id).values(**values))


async def test_a_command_from_someone_just_seen_needs_no_database_read(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/start"))
    with statements(b.services.engine) as seen:
        await b.feed(b.tg.message(ANN, "/help"))
    assert seen == []
    assert "How it works" in b.tg.sent_texts(ANN.id)[-1]
    # A new name is a new profile: read (and written) again.
    with statements(b.services.engine) as seen:
        await b.feed(b.tg.message(FakeUser(id=ANN.id, first_name="Anna", username="ann"), "/help"))
    assert any("users" in sql for sql in seen)


async def test_a_prompt_always_reads_the_database(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/start"))
    await _behind_our_back(b, chosen_model=ModelId.FLUX_DEV.value, level=Level.SUBSCRIBER.value)
    await b.feed(b.tg.message(ANN, "a lighthouse"))
    assert b.stubs["hf"].calls and not b.stubs["gemini"].calls  # the model chosen elsewhere


async def test_changes_made_here_are_seen_at_once(make_bot: BotFactory) -> None:
    b = await make_bot(ADMIN_IDS=str(ROOT.id))
    await b.feed(b.tg.message(ANN, "/profile"))
    assert "Level: User" in b.tg.sent_texts(ANN.id)[-1]
    await b.feed(b.tg.message(ROOT, "/setlevel @ann subscriber 7"))
    await b.feed(b.tg.message(ANN, "/profile"))
    assert "Level: Subscriber" in b.tg.sent_texts(ANN.id)[-1]
    await b.feed(b.tg.message(ROOT, "/ban @ann spam"))
    await b.feed(b.tg.message(ANN, "/help"))
    assert b.tg.sent_texts(ANN.id)[-1] == "You can no longer use this bot."


async def test_a_change_made_elsewhere_shows_within_the_ttl(make_bot: BotFactory, clock: ManualClock) -> None:
    b = await make_bot(USER_CACHE_TTL="30")
    await b.feed(b.tg.message(ANN, "/profile"))
    await _behind_our_back(b, chosen_model=ModelId.FLUX_DEV.value)
    await b.feed(b.tg.message(ANN, "/profile"))
    assert "Model: Gemini Flash" in b.tg.sent_texts(ANN.id)[-1]  # still the view read a moment ago
    clock.advance(timedelta(seconds=31))
    await b.feed(b.tg.message(ANN, "/profile"))
    assert "Model: FLUX Dev" in b.tg.sent_texts(ANN.id)[-1]


async def test_no_cached_view_outlives_the_day_or_the_level(make_bot: BotFactory, clock: ManualClock) -> None:
    b = await make_bot(USER_CACHE_TTL="3600")
    until = clock.now() + timedelta(seconds=20)
    await _behind_our_back(b, level=Level.SUBSCRIBER.value)  # no row yet: nothing happens
    await b.feed(b.tg.message(ANN, "/start"))
    await _behind_our_back(b, level=Level.SUBSCRIBER.value, level_until=until)
    b.services.users.forget(ANN.id)
    await b.feed(b.tg.message(ANN, "/profile"))
    assert "Level: Subscriber" in b.tg.sent_texts(ANN.id)[-1]
    clock.advance(timedelta(seconds=21))  # the subscription ended: the view is not used past it
    await b.feed(b.tg.message(ANN, "/profile"))
    assert "Level: User" in b.tg.sent_texts(ANN.id)[-1]
    # Across midnight the row is read and last_seen_at written, so "active today" stays exact.
    clock.set(clock.next_reset() - timedelta(seconds=5))
    await b.feed(b.tg.message(ANN, "/help"))
    clock.advance(timedelta(seconds=10))
    with statements(b.services.engine) as seen:
        await b.feed(b.tg.message(ANN, "/help"))
    assert any(sql.lstrip().upper().startswith(("INSERT", "UPDATE")) and "users" in sql for sql in seen)


async def test_admins_are_always_read_fresh(make_bot: BotFactory) -> None:
    b = await make_bot(ADMIN_IDS=str(ROOT.id))
    await b.feed(b.tg.message(ROOT, "/help"))
    with statements(b.services.engine) as seen:
        await b.feed(b.tg.message(ROOT, "/help"))
    assert any("users" in sql for sql in seen)


async def test_a_prompt_from_someone_banned_elsewhere_moments_ago_is_not_taken(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/help"))  # cached: not banned
    await _behind_our_back(b, is_banned=True)
    with statements(b.services.engine) as seen:
        await b.feed(b.tg.message(ANN, "a lighthouse"))
    assert any("FROM users" in sql for sql in seen)  # the prompt read the row again
    assert b.tg.sent_photos(ANN.id) == [] and not b.stubs["gemini"].calls
    async with b.services.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(Generation))).scalar_one() == 0
    await b.feed(b.tg.message(ANN, "/help"))  # not cached any more: the ban notice
    assert b.tg.sent_texts(ANN.id)[-1] == "You can no longer use this bot."
