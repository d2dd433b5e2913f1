"""Anti-flood through the real Dispatcher: a user sending 60 commands and 30 button presses at once
gets their burst answered, one "slow down" notice, and the rest dropped before any database work;
admins are not limited, and another user is answered as usual."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.fakes.telegram import FakeUser
from tests.sql_trace import statements

ANN = FakeUser(id=631, first_name="Ann")
OLGA = FakeUser(id=632, first_name="Ольга", language_code="ru")
BOB = FakeUser(id=633, first_name="Bob")
ROOT = FakeUser(id=900, first_name="Root")
BotFactory = Callable[..., Any]
NOTICE = "You are sending too fast"


def _answers(b: Any, user: FakeUser) -> int:
    return len(b.tg.calls_of("sendMessage", ok=True, chat_id=user.id)) + len(
        [c for c in b.tg.calls_of("answerCallbackQuery", ok=True) if c.params.get("callback_query_id", "")]
    )


async def test_60_commands_and_30_presses_in_a_second_get_the_burst_one_notice_and_nothing_more(
    make_bot: BotFactory,
) -> None:
    b = await make_bot(FLOOD_RATE=1, FLOOD_BURST=10)
    await b.feed(b.tg.message(ANN, "/generate"))  # a picker to press
    started = time.monotonic()
    for i in range(90):
        update = b.tg.message(ANN, "/help") if i % 3 else b.tg.callback(ANN, "pick:flux-dev")
        await b.feed(update, settle=False)
    elapsed = time.monotonic() - started
    helps = [t for t in b.tg.sent_texts(ANN.id) if "/generate" in t and NOTICE not in t]
    presses = [c for c in b.tg.calls_of("answerCallbackQuery", ok=True) if NOTICE not in (c.params.get("text") or "")]
    notices = [t for t in b.tg.sent_texts(ANN.id) if NOTICE in t] + [
        c for c in b.tg.calls_of("answerCallbackQuery", ok=True) if NOTICE in (c.params.get("text") or "")
    ]
    # The picker message took one unit of the burst; refills at 1/s while the flood ran.
    assert len(helps) + len(presses) <= 10 - 1 + int(elapsed) + 1, (len(helps), len(presses), elapsed)
    assert len(notices) == 1

    # Once over the limit, an update costs no SQL and no Telegram call at all.
    calls = len(b.tg.calls)
    with statements(b.services.engine) as seen:
        for _ in range(30):
            await b.feed(b.tg.message(ANN, "/profile"), settle=False)
    assert seen == [] and len(b.tg.calls) == calls


async def test_the_notice_is_in_the_user_s_language(make_bot: BotFactory) -> None:
    b = await make_bot(FLOOD_RATE=0.1, FLOOD_BURST=2)
    for _ in range(5):
        await b.feed(b.tg.message(OLGA, "/help"), settle=False)
    texts = b.tg.sent_texts(OLGA.id)
    assert len(texts) == 3 and "слишком быстро" in texts[-1], texts


async def test_admins_are_not_limited_and_other_users_are_answered(make_bot: BotFactory) -> None:
    b = await make_bot(FLOOD_RATE=0.1, FLOOD_BURST=2, ADMIN_IDS=str(ROOT.id))
    for _ in range(20):
        await b.feed(b.tg.message(ANN, "/help"), settle=False)
    for _ in range(20):
        await b.feed(b.tg.message(ROOT, "/help"), settle=False)
    started = time.monotonic()
    await b.feed(b.tg.message(BOB, "/help"), settle=False)
    assert time.monotonic() - started < 1.0
    assert len(b.tg.sent_texts(ROOT.id)) == 20
    assert len(b.tg.sent_texts(BOB.id)) == 1 and NOTICE not in b.tg.sent_texts(BOB.id)[0]
    assert len(b.tg.sent_texts(ANN.id)) == 3  # two answers, one notice


async def test_flood_rate_0_turns_it_off(make_bot: BotFactory) -> None:
    b = await make_bot(FLOOD_RATE=0, FLOOD_BURST=1)
    for _ in range(15):
        await b.feed(b.tg.message(ANN, "/help"), settle=False)
    assert len(b.tg.sent_texts(ANN.id)) == 15
