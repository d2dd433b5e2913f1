"""Inline mode through the real Dispatcher and the in-process workers: a user's caps apply to inline
jobs too, forged result ids start nothing, a queue outage costs nothing, and an inline job cut short by
a restart gets its message edited instead of a note in a chat."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.bulk import is_bulk
from bot.catalog import ModelId
from bot.i18n import create_i18n
from bot.inline_delivery import InlineAwareDelivery
from bot.levels import Level
from bot.recovery import Recovery
from models import Generation, User
from tests.fakes.telegram import FakeUser
from tests.sql_trace import statements

ANN = FakeUser(id=701, first_name="Ann")
BotFactory = Callable[..., Any]


async def choose(b: Any, user: FakeUser, prompt: str, *, settle: bool = True) -> str:
    """Type `@bot <prompt>`, take the "Generate" result; the inline message's id."""
    query = b.tg.inline_query(user, prompt)
    await b.feed(query, settle=False)
    query_id = query["inline_query"]["id"]
    [offer] = b.tg.inline_answers[query_id].params["results"]
    assert offer["id"].startswith("gen:"), offer
    chosen = b.tg.chosen_inline_result(user, query_id, offer["id"])
    await b.feed(chosen, settle=settle)
    return str(chosen["chosen_inline_result"]["inline_message_id"])


async def _rows(b: Any) -> list[Generation]:
    async with b.services.sessions() as s:
        return list((await s.execute(select(Generation).order_by(Generation.id))).scalars())


async def test_inline_jobs_wait_their_turn_and_respect_the_cap(make_bot: BotFactory) -> None:
    b = await make_bot(INFLIGHT_CAP="user:1", QUEUE_MAX_PER_USER=1, DAILY_LIMIT_USER=10)
    await b.feed(b.tg.message(ANN, "/start"))
    b.stubs["gemini"].delay = 0.3
    first = await choose(b, ANN, "one", settle=False)
    second = await choose(b, ANN, "two", settle=False)
    third = await choose(b, ANN, "three", settle=False)
    assert b.tg.inline_messages[second]["text"].startswith("⏳ Queued with Gemini Flash")
    assert "already have 2 images on the way" in b.tg.inline_messages[third]["text"]
    await b.services.queue.drained()
    assert [p for _, p, _ in b.stubs["gemini"].calls] == ["one", "two"]
    for inline_id in (first, second):
        assert "photo" in b.tg.inline_messages[inline_id]
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 2


async def test_the_bot_asks_telegram_for_inline_updates(make_bot: BotFactory) -> None:
    """Polling and the webhook both take allowed_updates from the registered handlers."""
    b = await make_bot()
    assert {"inline_query", "chosen_inline_result"} <= set(b.dp.resolve_used_update_types())


async def test_a_chosen_result_is_bulk_work_like_a_prompt(
    make_bot: BotFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/start"))
    seen: list[bool] = []
    submit = b.services.jobs.submit

    async def watched(**kwargs: Any) -> Any:
        seen.append(is_bulk())
        return await submit(**kwargs)

    monkeypatch.setattr(b.services.jobs, "submit", watched)
    await choose(b, ANN, "a fox")
    assert seen == [True]


async def test_a_choice_delivered_twice_starts_one_job(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/start"))
    query = b.tg.inline_query(ANN, "a fox")
    await b.feed(query)
    chosen = b.tg.chosen_inline_result(ANN, query["inline_query"]["id"], "gen:gemini-flash")
    await b.feed(chosen)
    await b.feed(chosen)  # e.g. a webhook retried after a crash
    assert len(await _rows(b)) == 1 and len(b.tg.sent_photos(ANN.id)) == 1
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 1


async def test_the_flood_gate_may_drop_typing_but_never_the_choice(make_bot: BotFactory) -> None:
    b = await make_bot(FLOOD_RATE=0.01, FLOOD_BURST=2)
    await b.feed(b.tg.message(ANN, "/start"))
    query = b.tg.inline_query(ANN, "a fox")
    await b.feed(query)
    typing = b.tg.inline_query(ANN, "a fox i")
    await b.feed(typing)
    assert typing["inline_query"]["id"] not in b.tg.inline_answers  # over the burst: dropped unread
    await b.feed(b.tg.chosen_inline_result(ANN, query["inline_query"]["id"], "gen:gemini-flash"))
    assert len(b.tg.sent_photos(ANN.id)) == 1 and [r.status for r in await _rows(b)] == ["delivered"]


async def test_forged_or_stale_result_ids_start_nothing(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/start"))
    for result_id in ("gen:pollinations", "gen:midjourney", "gen:", "locked"):
        chosen = {"result_id": result_id, "from": ANN.as_dict(), "query": "a fox", "inline_message_id": "AgAAAx"}
        await b.feed({"chosen_inline_result": chosen})
    assert await _rows(b) == [] and b.tg.calls_of("editMessageText") == []


async def test_a_queue_outage_when_chosen_costs_nothing_and_says_busy(
    make_bot: BotFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/start"))

    async def down(generation_id: int) -> None:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(b.services.queue, "enqueue", down)
    inline_id = await choose(b, ANN, "a fox")
    assert "busy" in b.tg.inline_messages[inline_id]["text"]
    [row] = await _rows(b)
    assert row.status == "cancelled" and row.inline_message_id == inline_id
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 0


async def test_a_bug_when_chosen_still_replaces_the_generating_text(
    make_bot: BotFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/start"))

    async def broken(**kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(b.services.jobs, "submit", broken)
    inline_id = await choose(b, ANN, "a fox")
    assert "Something went wrong on my side" in b.tg.inline_messages[inline_id]["text"]
    assert "RuntimeError" in caplog.text and "a bug" not in b.tg.inline_messages[inline_id]["text"]


async def test_an_inline_job_too_old_to_resume_edits_its_message(make_bot: BotFactory, clock: Any) -> None:
    b = await make_bot(RECOVERY_MAX_AGE=60)
    await b.feed(b.tg.message(ANN, "/start"))
    b.tg.inline_messages["AgAAAinline"] = {"text": "🎨 Generating with Gemini Flash…"}
    submitted = await b.services.jobs.submit(
        user_id=ANN.id,
        chat_id=ANN.id,
        level=Level.USER,
        prompt="a fox",
        model=ModelId.GEMINI_FLASH,
        inline_message_id="AgAAAinline",
    )
    assert submitted.accepted
    assert await b.services.jobs.claim("a-worker-that-died", timedelta(seconds=30)) is not None
    clock.advance(timedelta(seconds=120))
    recovery = Recovery(
        b.services.jobs, b.services.queue, InlineAwareDelivery(b.bot, create_i18n()), b.services.settings
    )
    await recovery.run(take_over=True)
    assert "interrupted by a restart" in b.tg.inline_messages["AgAAAinline"]["text"]
    assert b.tg.sent_texts(ANN.id)[-1].startswith("Hi")  # nothing said in the private chat but the greeting
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 0


async def test_only_a_private_message_opens_the_way_for_uploads(make_bot: BotFactory) -> None:
    b = await make_bot()
    group = {"id": -100555, "type": "supergroup", "title": "G"}
    await b.feed(b.tg.message(ANN, "/help", chat=group))
    query = b.tg.inline_query(ANN, "a fox")
    await b.feed(query)
    answer = b.tg.inline_answers[query["inline_query"]["id"]].params
    assert answer["results"] == [] and answer["button"]["start_parameter"] == "inline"

    await b.feed(b.tg.message(ANN, "hello"))  # anything in the private chat
    async with b.services.sessions() as s:
        user = await s.get(User, ANN.id)
        assert user is not None and user.private_chat_at is not None
    await choose(b, ANN, "a fox")  # offered now


async def test_a_user_stamped_before_costs_no_write_in_a_fresh_process(make_bot: BotFactory) -> None:
    """The stamp is read with the user row on every update: a message from someone stamped earlier
    (by another instance, or before a restart) takes no write transaction for it."""
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "hello"))
    b.services.users.rows.cache.drop(ANN.id)
    b.services.private_chats._stamped.clear()  # a new process remembers no stamp of its own
    with statements(b.services.engine) as seen:
        await b.feed(b.tg.message(ANN, "/help"))
    assert not [sql for sql in seen if "private_chat_at=" in sql.replace(" ", "") and "UPDATE" in sql]
