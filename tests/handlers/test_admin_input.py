"""Hostile admin input and hostile names: the admin commands neither crash nor show a name's
right-to-left override reversing the rest of the line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.fakes.telegram import FakeUser

ROOT = FakeUser(id=900, first_name="Root", username="root")
# U+202E RIGHT-TO-LEFT OVERRIDE: everything after it on the line is shown mirrored unless isolated.
EVIL = FakeUser(id=901, first_name="\u202eevil <b>", username=None)
FSI, PDI = "\u2068", "\u2069"

BotFactory = Callable[..., Any]


@pytest.mark.parametrize("ref", ["--5", "-+5", "+-5", "-", "--", "-٥"])
async def test_malformed_user_reference_gets_the_no_such_user_hint(make_bot: BotFactory, ref: str) -> None:
    b = await make_bot(ADMIN_IDS=str(ROOT.id))
    await b.feed(b.tg.message(ROOT, f"/user {ref}"))
    assert b.tg.sent_texts(ROOT.id)[-1] == f"No such user: {ref}. They must have started the bot."
    assert b.tg.calls_of("sendMessage", ok=False) == []


async def test_negative_numeric_reference_is_looked_up_not_crashed_on(make_bot: BotFactory) -> None:
    b = await make_bot(ADMIN_IDS=str(ROOT.id))
    await b.feed(b.tg.message(ROOT, "/user -5"))
    assert b.tg.sent_texts(ROOT.id)[-1] == "No such user: -5. They must have started the bot."


async def test_a_right_to_left_override_in_a_name_is_isolated_in_user_and_stats(make_bot: BotFactory) -> None:
    b = await make_bot(ADMIN_IDS=str(ROOT.id))
    await b.feed(b.tg.message(EVIL, "a cat"))  # one delivered image: EVIL is a top user
    await b.feed(b.tg.message(ROOT, f"/user {EVIL.id}"))
    first_line = b.tg.sent_texts(ROOT.id)[-1].split("\n")[0]
    assert first_line == f"{FSI}\u202eevil <b>{PDI} (901)"  # escaped on the way, shown as typed
    await b.feed(b.tg.message(ROOT, "/stats"))
    stats = b.tg.sent_texts(ROOT.id)[-1].split("\n")
    assert f"• {FSI}\u202eevil <b>{PDI} (901): 1" in stats
    await b.feed(b.tg.message(ROOT, f"/ban {EVIL.id}"))
    assert b.tg.sent_texts(ROOT.id)[-1] == f"{FSI}\u202eevil <b>{PDI} (901) is banned."


async def test_a_right_to_left_override_in_a_prompt_is_isolated_in_user(make_bot: BotFactory) -> None:
    b = await make_bot(ADMIN_IDS=str(ROOT.id))
    await b.feed(b.tg.message(ROOT, "/start"))
    await b.feed(b.tg.message(ROOT, "\u202etac a"))
    await b.feed(b.tg.message(ROOT, f"/user {ROOT.id}"))
    last = b.tg.sent_texts(ROOT.id)[-1].split("\n")[-1]
    assert last.endswith(f"[delivered] {FSI}\u202etac a{PDI}")
