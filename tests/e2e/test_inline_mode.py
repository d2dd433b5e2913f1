"""Inline mode end to end: the real bot answers `@bot <prompt>` against the fake Bot API, and a chosen
result becomes a job whose image replaces the inline message (uploaded first, then edited by file_id)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.catalog import ModelId
from bot.clock import ManualClock
from tests.harness import FakeUser, Harness, photo_bytes

pytestmark = pytest.mark.e2e

ANN = FakeUser(id=3001, first_name="Ann", username="ann")
BOB = FakeUser(id=3002, first_name="Bob", username="bob")  # never opens a chat with the bot
IVAN = FakeUser(id=3003, first_name="Иван", username="ivan", language_code="ru")
STORAGE = -1009876543210


async def ask(h: Harness, user: FakeUser, query: str) -> tuple[str, dict]:
    """The user types `@bot <query>`: the inline query id and the bot's answerInlineQuery parameters."""
    update = h.tg.inline_query(user, query)
    await h.push(update)
    query_id = update["inline_query"]["id"]
    return query_id, h.tg.inline_answers[query_id].params


async def choose(h: Harness, user: FakeUser, query_id: str, result_id: str) -> str | None:
    """The user taps a result; the inline message's id (None when the result carried no keyboard)."""
    chosen = h.tg.chosen_inline_result(user, query_id, result_id)
    await h.push(chosen)
    return chosen["chosen_inline_result"].get("inline_message_id")


async def test_from_inline_query_to_the_edited_message(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        assert {"inline_query", "chosen_inline_result"} <= set(h.tg.allowed_updates or [])

        _, hint = await ask(h, ANN, "   ")
        [result] = hint["results"]
        assert result["id"] == "hint" and "@test_bot" in result["description"]

        prompt = "a red fox <b>& friends</b> " + "x" * 300  # longer than Telegram's 256, escaped everywhere
        query_id, answer = await ask(h, ANN, prompt)
        assert answer["is_personal"] is True and answer["cache_time"] <= 10
        [offer] = answer["results"]
        assert offer["id"] == "gen:gemini-flash" and "Gemini" in offer["title"]
        assert offer["reply_markup"]["inline_keyboard"], "without a keyboard the message could not be edited"
        assert await h.generations() == [] and await h.used_today(ANN.id) == 0  # an answer costs nothing

        mark = h.tg.mark()
        inline_id = await choose(h, ANN, query_id, offer["id"])
        assert inline_id is not None
        [upload] = h.photos(ANN, since=mark)  # the user's own copy, in the private chat
        assert h.gemini.made(photo_bytes(upload))
        file_id = upload.result["photo"][-1]["file_id"]
        [edit] = h.tg.calls_of("editMessageMedia", ok=True, since=mark, inline_message_id=inline_id)
        assert edit.files == {} and edit.params["media"]["media"] == file_id  # by file_id, never an upload
        message = h.tg.inline_messages[inline_id]
        assert message["photo"][-1]["file_id"] == file_id and "text" not in message
        assert "a red fox <b>& friends</b>" in message["caption"] and "Images left" not in message["caption"]
        assert message["reply_markup"]["inline_keyboard"][0][0]["switch_inline_query_current_chat"] == ""

        [record] = await h.generations()
        assert (record.status, record.inline_message_id, record.sent_message_id, record.chat_id) == (
            "delivered", inline_id, upload.result["message_id"], ANN.id,
        )  # fmt: skip
        assert record.prompt == prompt.strip()
        assert await h.used_today(ANN.id) == 1


async def test_locked_model_and_exhausted_limit_are_answered_inline_without_a_job(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with Harness(tmp_path, clock, DAILY_LIMIT_USER=1) as h:
        await h.say(ANN, "/start")
        assert h.app is not None
        await h.app.services.users.set_model(ANN.id, ModelId.FLUX_PRO)
        query_id, answer = await ask(h, ANN, "a castle")
        [locked] = answer["results"]
        assert locked["id"] == "locked" and "FLUX Pro" in locked["title"] and "Subscriber" in locked["title"]
        assert "reply_markup" not in locked
        assert await choose(h, ANN, query_id, "locked") is None  # sent anyway: the chat sees the notice
        assert await h.generations() == []

        await h.app.services.users.set_model(ANN.id, ModelId.GEMINI_FLASH)
        early_id, early = await ask(h, ANN, "a tower")  # offered while a unit is left...
        assert early["results"][0]["id"] == "gen:gemini-flash"
        await h.say(ANN, "a cat")  # ...which a prompt in the chat then uses up
        assert len(h.photos(ANN)) == 1

        _, answer = await ask(h, ANN, "a dog")
        [limit] = answer["results"]
        assert limit["id"] == "limit" and "all 1 images" in limit["title"] and "resets" in limit["description"]

        inline_id = await choose(h, ANN, early_id, "gen:gemini-flash")
        assert inline_id is not None
        assert "You have used all 1 images for today" in h.tg.inline_messages[inline_id]["text"]
        assert len(await h.generations()) == 1 and await h.used_today(ANN.id) == 1


async def test_failure_edits_the_inline_message_and_refunds(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        await h.say(IVAN, "/start")
        h.gemini.behave("status", status=500)
        h.replicate.behave("status", status=500)
        h.pollinations.behave("garbage")
        query_id, answer = await ask(h, IVAN, "маяк на закате")
        mark = h.tg.mark()
        inline_id = await choose(h, IVAN, query_id, answer["results"][0]["id"])
        assert inline_id is not None
        text = h.tg.inline_messages[inline_id]["text"]
        assert "не списан" in text or "не списано" in text, text
        assert h.photos(IVAN, since=mark) == [] and h.tg.calls_of("editMessageMedia", since=mark) == []
        [record] = await h.generations()
        assert record.status == "failed" and record.inline_message_id == inline_id
        assert await h.used_today(IVAN.id) == 0


async def test_a_user_who_never_started_the_bot_is_asked_to(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        _, answer = await ask(h, BOB, "a red fox")
        assert answer["results"] == []
        assert answer["button"]["start_parameter"] == "inline" and "Start" in answer["button"]["text"]

        await h.say(BOB, "/start inline")  # the button's deep link
        _, answer = await ask(h, BOB, "a red fox")
        assert answer["results"][0]["id"] == "gen:gemini-flash"


async def test_blocked_private_chat_edits_the_inline_message_and_refunds(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        query_id, _ = await ask(h, ANN, "a red fox")
        h.tg.block(ANN.id)  # blocked the bot since: the upload to the private chat is refused
        inline_id = await choose(h, ANN, query_id, "gen:gemini-flash")
        assert inline_id is not None
        assert "press Start" in h.tg.inline_messages[inline_id]["text"]
        [record] = await h.generations()
        assert record.status == "undelivered" and await h.used_today(ANN.id) == 0


async def test_storage_chat_serves_users_without_a_private_chat(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, STORAGE_CHAT_ID=STORAGE) as h:
        query_id, answer = await ask(h, BOB, "a blue whale")
        [offer] = answer["results"]
        mark = h.tg.mark()
        inline_id = await choose(h, BOB, query_id, offer["id"])
        assert inline_id is not None
        [upload] = h.tg.calls_of("sendPhoto", ok=True, since=mark, chat_id=STORAGE)
        assert h.tg.calls_of("sendPhoto", since=mark, chat_id=BOB.id) == []
        assert "blue whale" not in (upload.result.get("caption") or "")  # the storage chat learns no prompt
        message = h.tg.inline_messages[inline_id]
        assert message["photo"][-1]["file_id"] == upload.result["photo"][-1]["file_id"]
        assert await h.used_today(BOB.id) == 1


async def test_an_inline_message_gone_before_the_image_costs_only_when_the_user_got_a_copy(
    tmp_path: Path, clock: ManualClock
) -> None:
    gone = "Bad Request: MESSAGE_ID_INVALID"  # deleted from the chat while the image was being made
    async with Harness(tmp_path, clock) as h:  # uploaded to the private chat: the user has the image
        await h.say(ANN, "/start")
        query_id, _ = await ask(h, ANN, "a red fox")
        h.tg.fail("editMessageMedia", status=400, description=gone)
        await choose(h, ANN, query_id, "gen:gemini-flash")
        assert len(h.photos(ANN)) == 1
        [record] = await h.generations()
        assert record.status == "delivered" and await h.used_today(ANN.id) == 1
    (tmp_path / "storage").mkdir()
    async with Harness(tmp_path / "storage", clock, STORAGE_CHAT_ID=STORAGE) as h:  # nobody has it: refunded
        query_id, _ = await ask(h, BOB, "a red fox")
        h.tg.fail("editMessageMedia", status=400, description=gone)
        await choose(h, BOB, query_id, "gen:gemini-flash")
        assert h.tg.calls_of("sendPhoto", ok=True, chat_id=STORAGE)
        [record] = await h.generations()
        assert record.status == "undelivered" and await h.used_today(BOB.id) == 0
