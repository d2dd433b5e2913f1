"""Refusals through the real Dispatcher and the in-process worker (stub providers): the user's message,
the settled row, what admins see in /user and /stats, the daily alert and its ban button."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.catalog import ModelId
from bot.levels import Level
from bot.providers.base import ErrorKind
from models import Generation, GenerationStatus
from tests.fakes.telegram import FakeUser

ANN = FakeUser(id=701, first_name="Ann", username="ann")
IVAN = FakeUser(id=702, first_name="Иван", username="ivan", language_code="ru")
ROOT = FakeUser(id=900, first_name="Root", username="root")
OPS = FakeUser(id=901, first_name="Ops", username="ops", language_code="ru")
BotFactory = Callable[..., Any]
REFUSAL = "The image model's content policy refused this request. Nothing was charged"


async def _rows(b: Any) -> list[Generation]:
    async with b.services.sessions() as s:
        return list((await s.execute(select(Generation).order_by(Generation.id))).scalars())


async def test_a_refusal_is_final_uncharged_and_recorded_with_its_reason(make_bot: BotFactory) -> None:
    b = await make_bot()
    b.stubs["gemini"].outcomes = [ErrorKind.REFUSED]
    await b.feed(b.tg.message(ANN, "something the filter refuses"))

    texts = b.tg.sent_texts(ANN.id)
    assert REFUSAL in texts[-1] and "every image service failed" not in texts[-1]
    assert b.tg.sent_photos(ANN.id) == []
    status = next(c for c in b.tg.sent_messages(ANN.id) if "Generating" in c.params["text"])
    assert b.tg.calls_of("deleteMessage", ok=True, message_id=status.result["message_id"])  # replaced
    assert b.stubs["hf"].calls == [] and b.stubs["pollinations"].calls == []
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 0
    [row] = await _rows(b)
    assert (row.status, row.provider, row.refusal_reason, row.error_class) == (
        GenerationStatus.REFUSED, "gemini", "stub failure", "refused",
    )  # fmt: skip

    b.stubs["gemini"].outcomes = [ErrorKind.REFUSED]
    await b.feed(b.tg.message(IVAN, "то же самое"))
    assert b.stubs["gemini"].calls[-1][1] == "то же самое"
    assert "Политика контента модели отклонила этот запрос" in b.tg.sent_texts(IVAN.id)[-1]


async def test_refusal_fallback_restores_the_chain(make_bot: BotFactory) -> None:
    b = await make_bot(REFUSAL_FALLBACK="1")
    b.stubs["gemini"].outcomes = [ErrorKind.REFUSED]
    await b.feed(b.tg.message(ANN, "a lighthouse"))
    assert len(b.tg.sent_photos(ANN.id)) == 1
    assert len(b.stubs["hf"].calls) == 1
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 1
    assert [r.status for r in await _rows(b)] == [GenerationStatus.DELIVERED]


async def test_the_word_list_refuses_before_any_provider(make_bot: BotFactory, tmp_path: Path) -> None:
    word_list = tmp_path / "blocked.txt"
    word_list.write_text("# operator's list\ngore\nre:\\bkill(ing)?\\b\n", encoding="utf-8")
    b = await make_bot(BLOCKED_TERMS_FILE=str(word_list))
    await b.feed(b.tg.message(ANN, "A scene full of GORE"))
    await b.feed(b.tg.message(ANN, "killing time at the beach"))
    assert [REFUSAL in t for t in b.tg.sent_texts(ANN.id) if "Generating" not in t] == [True, True]
    assert all(stub.calls == [] for stub in b.stubs.values())
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 0
    assert [(r.provider, r.refusal_reason) for r in await _rows(b)] == [
        ("word-list", "blocked term gore"),
        ("word-list", "blocked term re:\\bkill(ing)?\\b"),
    ]
    await b.feed(b.tg.message(ANN, "a goretex jacket"))  # whole words only
    assert len(b.tg.sent_photos(ANN.id)) == 1


async def test_user_and_stats_show_refusals(make_bot: BotFactory, clock: Any) -> None:
    b = await make_bot(ADMIN_IDS=str(ROOT.id), REFUSAL_ALERT="0")
    b.stubs["gemini"].outcomes = [ErrorKind.REFUSED]
    await b.feed(b.tg.message(ANN, "refused yesterday <b>"))
    clock.advance(timedelta(days=1))
    b.stubs["gemini"].outcomes = [ErrorKind.REFUSED, "ok"]
    b.stubs["hf"].outcomes = [ErrorKind.REFUSED]
    await b.feed(b.tg.message(ANN, "refused today"))
    await b.feed(b.tg.message(ANN, "a cat"))
    await b.services.users.set_model(ANN.id, ModelId.FLUX_DEV)
    await b.feed(b.tg.message(ANN, "refused by flux"))

    await b.feed(b.tg.message(ROOT, "/user @ann"))
    report = b.tg.sent_texts(ROOT.id)[-1]
    assert "Refused by content filters: 2 today, 3 in total" in report
    assert "→ gemini [refused: stub failure] \u2068refused today\u2069" in report  # prompts isolated
    assert "→ hf-replicate [refused: stub failure] \u2068refused by flux\u2069" in report

    await b.feed(b.tg.message(ROOT, "/stats 2"))
    stats = b.tg.sent_texts(ROOT.id)[-1]
    assert "Refused by content filters: 3 (gemini: 2, hf-replicate: 1)" in stats
    assert "Failures: 0" in stats
    await b.feed(b.tg.message(ROOT, "/stats"))
    assert "Refused by content filters: 2 (gemini: 1, hf-replicate: 1)" in b.tg.sent_texts(ROOT.id)[-1]


async def test_the_daily_alert_reaches_every_admin_once_and_its_button_bans(make_bot: BotFactory, clock: Any) -> None:
    b = await make_bot(ADMIN_IDS=f"{ROOT.id},{OPS.id}", REFUSAL_ALERT="2", DAILY_LIMIT_USER="20")
    await b.feed(b.tg.message(OPS, "/start"))  # OPS has told the bot their language; ROOT never wrote
    b.stubs["gemini"].outcomes = [ErrorKind.REFUSED] * 6

    def alerts(admin: FakeUser) -> list[Any]:
        return [c for c in b.tg.sent_messages(admin.id) if "/user 701" in c.params["text"]]

    for i in range(2):
        await b.feed(b.tg.message(ANN, f"refused {i}"))
    assert alerts(ROOT) == [] and alerts(OPS) == []  # two is not more than REFUSAL_ALERT=2
    await b.feed(b.tg.message(ANN, "refused 2"))
    [to_root], [to_ops] = alerts(ROOT), alerts(OPS)
    assert to_root.params["text"] == (
        "⚠️ \u2068@ann\u2069 (701) has had 3 prompts refused by content filters today. /user 701 shows them."
    )
    assert to_ops.params["text"] == (
        "⚠️ \u2068@ann\u2069 (701): запросов, отклонённых фильтрами контента сегодня, — 3. Подробности: /user 701."
    )
    assert to_root.buttons[0]["text"] == "🚫 Ban" and to_ops.buttons[0]["text"] == "🚫 Заблокировать"
    assert to_root.callback_datas == ["ban:701"]

    await b.feed(b.tg.message(ANN, "refused 3"))
    assert len(alerts(ROOT)) == 1  # once that day

    await b.feed(b.tg.callback(ROOT, "ban:701", message_id=to_root.result["message_id"]))
    answer = b.tg.calls_of("answerCallbackQuery")[-1]
    assert answer.params["text"] == "\u2068@ann\u2069 (701) is banned."
    target = await b.services.users.get(ANN.id)
    assert target is not None and target.is_banned
    assert target.ban_reason == "many prompts refused by content filters"
    edited = b.tg.message_state(ROOT.id, to_root.result["message_id"])
    assert edited is not None and not edited.get("reply_markup")
    assert edited["text"].endswith("\u2068@ann\u2069 (701) is banned.")

    await b.services.bans.set_ban(ANN.id, False)
    clock.advance(timedelta(days=1))
    b.stubs["gemini"].outcomes = [ErrorKind.REFUSED] * 3
    for i in range(3):
        await b.feed(b.tg.message(ANN, f"next day {i}"))
    assert len(alerts(ROOT)) == 2  # a new day, a new alert


async def test_only_admins_can_press_ban(make_bot: BotFactory) -> None:
    b = await make_bot(ADMIN_IDS=str(ROOT.id))
    await b.feed(b.tg.message(IVAN, "/start"))
    await b.feed(b.tg.message(ANN, "/start"))
    await b.feed(b.tg.callback(ANN, "ban:702"))
    assert "outdated" in b.tg.calls_of("answerCallbackQuery")[-1].params["text"]
    target = await b.services.users.get(IVAN.id)
    assert target is not None and not target.is_banned
    await b.feed(b.tg.callback(ROOT, f"ban:{ROOT.id}"))
    answer = b.tg.calls_of("answerCallbackQuery")[-1].params
    assert answer["show_alert"] is True and "cannot be changed by command" in answer["text"]
