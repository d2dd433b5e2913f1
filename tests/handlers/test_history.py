"""/history through the real Dispatcher: thumbnails by stored file id (nothing uploaded), newest
first, five to a page, ◀️ ▶️ editing the page in place, 📤 send again, and /history clear."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from keyboards.history import ClearChoice, HistoryAgain, HistoryClear
from models import Generation, GenerationImage
from tests.fakes.telegram import Call, FakeUser

ANN = FakeUser(id=811, first_name="Ann")
BOB = FakeUser(id=812, first_name="Bob", language_code="ru")
BotFactory = Callable[..., Any]


async def count(b: Any, model: type[Any]) -> int:
    async with b.services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def answers(b: Any) -> list[Call]:
    return b.tg.calls_of("answerCallbackQuery", ok=True)


async def make_images(b: Any, user: FakeUser, n: int) -> list[str]:
    """n delivered images; returns the file ids Telegram gave them, oldest first."""
    for i in range(1, n + 1):
        await b.feed(b.tg.message(user, f"<b>p{i}</b> & co"))
    return [p.result["photo"][-1]["file_id"] for p in b.tg.sent_photos(user.id)]


async def test_history_pages_by_five_newest_first_and_pages_in_place(make_bot: BotFactory) -> None:
    b = await make_bot(DAILY_LIMIT_USER=10)
    file_ids = await make_images(b, ANN, 7)
    mark = b.tg.mark()
    await b.feed(b.tg.message(ANN, "/history"))

    thumbs = b.tg.calls_of("sendPhoto", ok=True, since=mark)
    assert len(thumbs) == 5
    assert all(t.files == {} for t in thumbs)  # sent by file id: nothing re-uploaded
    assert [t.params["photo"] for t in thumbs] == file_ids[::-1][:5]
    first = thumbs[0].result["caption"]
    assert "Gemini Flash" in first and "📝 <b>p7</b> & co" in first  # the prompt arrives as text, not markup
    assert "<b>" in thumbs[0].params["caption"] and "&lt;b&gt;p7" in thumbs[0].params["caption"]
    nav = b.tg.sent_messages(ANN.id)[-1]
    assert "page 1 of 2 (7 results" in nav.result["text"]
    assert [btn["text"] for btn in nav.reply_markup["inline_keyboard"][0]] == ["▶️"]  # type: ignore[index]
    thumb_ids = [t.result["message_id"] for t in thumbs]

    mark = b.tg.mark()
    await b.feed(b.tg.callback(ANN, nav.callback_datas[0], message_id=nav.result["message_id"]))
    edits = b.tg.calls_of("editMessageMedia", ok=True, since=mark)
    assert [e.params["message_id"] for e in edits] == thumb_ids[:2]
    assert [e.params["media"]["media"] for e in edits] == [file_ids[1], file_ids[0]]
    assert sorted(d.params["message_id"] for d in b.tg.calls_of("deleteMessage", ok=True, since=mark)) == thumb_ids[2:]
    assert b.tg.calls_of("sendPhoto", since=mark) == []
    state = b.tg.message_state(ANN.id, thumb_ids[0])
    assert state is not None and "p2" in state["caption"]
    nav_state = b.tg.message_state(ANN.id, nav.result["message_id"])
    assert nav_state is not None and "page 2 of 2" in nav_state["text"]
    back = nav_state["reply_markup"]["inline_keyboard"][0][0]
    assert back["text"] == "◀️"

    mark = b.tg.mark()
    await b.feed(b.tg.callback(ANN, back["callback_data"], message_id=nav.result["message_id"]))
    assert [e.params["message_id"] for e in b.tg.calls_of("editMessageMedia", ok=True, since=mark)] == thumb_ids[:2]
    resent = b.tg.calls_of("sendPhoto", ok=True, since=mark)
    assert [t.params["photo"] for t in resent] == file_ids[::-1][2:5]
    # The new thumbnails came below the old ◀️ ▶️ line: it moves under them.
    new_nav = b.tg.sent_messages(ANN.id)[-1]
    assert new_nav.result["message_id"] > resent[-1].result["message_id"]
    assert "page 1 of 2" in new_nav.result["text"]
    assert b.tg.message_state(ANN.id, nav.result["message_id"]) is None  # the old line is gone


async def test_send_again_and_regenerate_from_history_and_only_for_the_owner(make_bot: BotFactory) -> None:
    b = await make_bot(DAILY_LIMIT_USER=10)
    [file_id] = await make_images(b, ANN, 1)
    await b.feed(b.tg.message(ANN, "/history"))
    thumb = b.tg.sent_photos(ANN.id)[-1]
    again, regenerate = thumb.callback_datas
    gid = HistoryAgain.unpack(again).generation_id

    await b.feed(b.tg.callback(BOB, again))
    assert answers(b)[-1].params["show_alert"] is True and "чужому" in answers(b)[-1].params["text"]
    mark = b.tg.mark()
    await b.feed(b.tg.callback(ANN, again, message_id=thumb.result["message_id"]))
    [resent] = b.tg.calls_of("sendPhoto", ok=True, since=mark)
    assert resent.params["photo"] == file_id and resent.files == {}

    await b.feed(b.tg.callback(ANN, regenerate, message_id=thumb.result["message_id"]))
    async with b.services.sessions() as session:
        last = (await session.execute(select(Generation).order_by(Generation.id.desc()).limit(1))).scalar_one()
    assert (last.parent_id, last.status) == (gid, "delivered")
    await b.feed(b.tg.message(BOB, "/history"))
    assert "история пуста" in b.tg.sent_texts(BOB.id)[-1]  # Bob sees only his own (none)


async def test_history_clear_asks_first_then_forgets_the_images_only(make_bot: BotFactory) -> None:
    b = await make_bot(DAILY_LIMIT_USER=10)
    await make_images(b, ANN, 3)
    await make_images(b, BOB, 1)
    await b.feed(b.tg.message(ANN, "/history clear"))
    ask = b.tg.sent_messages(ANN.id)[-1]
    assert "Delete your history (3 results)" in ask.result["text"]
    assert ask.callback_datas == [HistoryClear(choice=c).pack() for c in (ClearChoice.YES, ClearChoice.NO)]

    await b.feed(b.tg.callback(ANN, HistoryClear(choice=ClearChoice.NO).pack(), message_id=ask.result["message_id"]))
    assert b.tg.message_state(ANN.id, ask.result["message_id"])["text"] == "Nothing was deleted."  # type: ignore[index]
    assert await count(b, GenerationImage) == 4

    await b.feed(b.tg.callback(ANN, HistoryClear(choice=ClearChoice.YES).pack(), message_id=ask.result["message_id"]))
    assert "cleared" in b.tg.message_state(ANN.id, ask.result["message_id"])["text"]  # type: ignore[index]
    assert await count(b, GenerationImage) == 1  # Bob's stays
    assert await count(b, Generation) == 4  # limits and /stats still count what was made
    await b.feed(b.tg.message(ANN, "/history"))
    assert "Your history is empty" in b.tg.sent_texts(ANN.id)[-1]
    await b.feed(b.tg.message(ANN, "/history clear"))
    assert "already empty" in b.tg.sent_texts(ANN.id)[-1]
