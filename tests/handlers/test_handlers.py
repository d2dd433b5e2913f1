"""Handlers through the real Dispatcher: registration, picker, prompt flow, bans, admin gating, errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.levels import Level
from bot.providers.base import ErrorKind
from tests.fakes.telegram import FakeUser

ANN = FakeUser(id=501, first_name="Ann", username="ann")
OLGA = FakeUser(id=502, first_name="Ольга", language_code="ru")
ROOT = FakeUser(id=900, first_name="Root", username="root")

BotFactory = Callable[..., Any]


async def test_start_registers_the_user_in_their_language(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(OLGA, "/start"))
    user = await b.services.users.get(OLGA.id)
    assert user is not None and user.language_code == "ru" and user.level is Level.USER
    reply = b.tg.sent_messages(OLGA.id)[-1]
    assert "Привет, Ольга" in reply.result["text"]
    assert reply.params["reply_markup"]["keyboard"][0][0]["text"] == "🎨 Сгенерировать"


@pytest.mark.parametrize(
    "level, locked",
    [(Level.USER, ["FLUX Pro"]), (Level.SUBSCRIBER, []), (Level.ADMIN, [])],
)
async def test_picker_locks_what_the_level_does_not_hold(make_bot: BotFactory, level: Level, locked: list[str]) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/start"))
    await b.services.levels.set_level(ANN.id, level)
    await b.feed(b.tg.message(ANN, "/generate"))
    labels = [btn["text"] for btn in b.tg.sent_messages(ANN.id)[-1].buttons]
    assert [label.removeprefix("🔒 ") for label in labels if label.startswith("🔒")] == locked


async def test_admin_ids_are_admins(make_bot: BotFactory) -> None:
    b = await make_bot(ADMIN_IDS=str(ROOT.id))
    await b.feed(b.tg.message(ROOT, "/profile"))
    assert "Level: Admin" in b.tg.sent_texts(ROOT.id)[-1]
    assert "Used today: 0 of unlimited" in b.tg.sent_texts(ROOT.id)[-1]


async def test_prompt_reaches_the_chosen_model_and_a_photo_comes_back(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.callback(ANN, "pick:flux-dev"))
    await b.feed(b.tg.message(ANN, "  a quiet harbour  "))
    assert [(m.value, p) for m, p, _ in b.stubs["hf"].calls] == [("flux-dev", "a quiet harbour")]
    assert b.stubs["gemini"].calls == []
    [photo] = b.tg.sent_photos(ANN.id)
    assert "FLUX Dev" in photo.result["caption"] and "4 of 5" in photo.result["caption"]


async def test_fallback_is_named_in_the_caption(make_bot: BotFactory) -> None:
    b = await make_bot()
    b.stubs["gemini"].outcomes = [ErrorKind.TIMEOUT]
    await b.feed(b.tg.message(ANN, "a quiet harbour"))
    caption = b.tg.sent_photos(ANN.id)[-1].result["caption"]
    assert caption.startswith("🎨 FLUX Dev") and "Gemini Flash was unavailable, so FLUX Dev made this one" in caption


async def test_exhausted_limit_says_when_it_resets(make_bot: BotFactory) -> None:
    b = await make_bot(DAILY_LIMIT_USER=1)
    await b.feed(b.tg.message(ANN, "one"))
    await b.feed(b.tg.message(ANN, "two"))
    assert len(b.tg.sent_photos(ANN.id)) == 1
    assert b.tg.sent_texts(ANN.id)[-1] == (
        "You have used all 1 images for today. The limit resets at 00:00 UTC (in 12 h 0 min)."
    )


async def test_menu_buttons_work_in_both_languages(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(OLGA, "👤 Профиль"))
    assert b.tg.sent_texts(OLGA.id)[-1].startswith("Ваш профиль")
    await b.feed(b.tg.message(ANN, "🎨 Generate"))
    assert b.tg.sent_messages(ANN.id)[-1].callback_datas[0] == "pick:gemini-flash"
    assert all(not stub.calls for stub in b.stubs.values())  # menu texts are never prompts


async def test_an_unexpected_error_gives_a_short_localized_message(
    make_bot: BotFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = await make_bot()

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("db exploded: secret-internal-detail")

    monkeypatch.setattr(b.services.users, "set_model", broken)
    await b.feed(b.tg.callback(OLGA, "pick:flux-dev"))
    answer = b.tg.calls_of("answerCallbackQuery")[-1]
    assert answer.params["text"] == "Что-то пошло не так на моей стороне. Попробуйте ещё раз чуть позже."
    assert all("exploded" not in str(c.params) for c in b.tg.calls)


async def test_banned_user_gets_one_notice_then_silence(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/start"))
    await b.services.bans.set_ban(ANN.id, True, "spam")
    before = len(b.tg.sent_messages(ANN.id))
    for text in ("hello", "/start", "/generate"):
        await b.feed(b.tg.message(ANN, text))
    await b.feed(b.tg.callback(ANN, "pick:flux-dev"))
    sent = b.tg.sent_texts(ANN.id)[before:]
    assert sent == ["You can no longer use this bot."]
    assert all(not stub.calls for stub in b.stubs.values())


async def test_admin_commands_are_unknown_commands_for_others(make_bot: BotFactory) -> None:
    b = await make_bot(ADMIN_IDS=str(ROOT.id))
    await b.feed(b.tg.message(ANN, "/stats"))
    await b.feed(b.tg.message(ANN, "/frobnicate"))
    unknown = b.tg.sent_texts(ANN.id)
    assert unknown[0] == unknown[1] == "I don't know that command. /help lists what I can do."
    await b.feed(b.tg.message(ROOT, "/stats"))
    assert b.tg.sent_texts(ROOT.id)[-1].startswith("Stats for 1 day(s)")


async def test_group_chatter_is_not_a_prompt(make_bot: BotFactory) -> None:
    b = await make_bot()
    group = {"id": -100123, "type": "supergroup", "title": "Friends"}
    await b.feed(b.tg.message(ANN, "what a nice day", chat=group))
    await b.feed(b.tg.sticker(ANN))  # private: still hinted
    assert all(not stub.calls for stub in b.stubs.values())
    assert b.tg.calls_of("sendMessage", chat_id=-100123) == []
    await b.feed(b.tg.message(ANN, "/help", chat=group))
    assert len(b.tg.calls_of("sendMessage", chat_id=-100123)) == 1


async def test_a_menu_button_in_the_other_language_is_still_the_button(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "👤 Профиль"))  # an English user with an old Russian keyboard
    assert b.tg.sent_texts(ANN.id)[-1].startswith("Your profile")
    await b.feed(b.tg.message(OLGA, "❓ Help"))
    assert b.tg.sent_texts(OLGA.id)[-1].startswith("Как это работает")
    assert all(not stub.calls for stub in b.stubs.values())


async def test_senders_that_are_not_people_are_ignored(make_bot: BotFactory) -> None:
    b = await make_bot()
    group = {"id": -100555, "type": "supergroup", "title": "Team"}
    anonymous = FakeUser(id=1087968824, first_name="Group", username="GroupAnonymousBot")
    update = b.tg.message(anonymous, "/help", chat=group, sender_chat=group)
    update["message"]["from"]["is_bot"] = True
    await b.feed(update)
    assert b.tg.calls_of("sendMessage") == [] and await b.services.users.get(anonymous.id) is None


async def test_commands_for_other_bots_in_groups_are_not_answered(make_bot: BotFactory) -> None:
    b = await make_bot()
    group = {"id": -100777, "type": "group", "title": "Dice"}
    await b.feed(b.tg.message(ANN, "/roll@dicebot", chat=group))
    assert b.tg.calls_of("sendMessage", chat_id=-100777) == []


async def test_tapping_the_same_model_twice_says_nothing_new(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/generate"))
    picker = b.tg.sent_messages(ANN.id)[-1].result["message_id"]
    await b.feed(b.tg.callback(ANN, "pick:flux-dev", message_id=picker))
    sent = len(b.tg.sent_messages(ANN.id))
    await b.feed(b.tg.callback(ANN, "pick:flux-dev", message_id=picker))
    assert len(b.tg.sent_messages(ANN.id)) == sent  # no duplicate "Model: FLUX Dev…" message
    assert len(b.tg.calls_of("answerCallbackQuery")) == 2  # both taps answered


async def test_too_long_a_prompt_is_refused_before_anything_is_reserved(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "x" * 4090))
    assert b.tg.sent_texts(ANN.id) == ["That description is too long or empty. Please send a shorter text."]
    assert b.tg.sent_photos(ANN.id) == []
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 0
    assert all(not stub.calls for stub in b.stubs.values())


async def test_two_broadcasts_at_once_start_only_one(make_bot: BotFactory) -> None:
    import asyncio

    b = await make_bot(ADMIN_IDS=str(ROOT.id))
    for user in (ANN, OLGA):
        await b.feed(b.tg.message(user, "/start"))
    await asyncio.gather(b.feed(b.tg.message(ROOT, "/broadcast hi")), b.feed(b.tg.message(ROOT, "/broadcast hi")))
    replies = b.tg.sent_texts(ROOT.id)
    assert sum(t.startswith("Broadcast started") for t in replies) == 1
    assert sum(t.startswith("A broadcast is already running") for t in replies) == 1
    await b.services.broadcaster.wait()
    assert [t for t in b.tg.sent_texts(ANN.id) if t == "hi"] == ["hi"]


async def test_unlimited_users_are_not_sold_days(make_bot: BotFactory) -> None:
    b = await make_bot(ADMIN_IDS=str(ROOT.id))
    await b.feed(b.tg.message(ROOT, "/subscribe"))
    assert b.tg.calls_of("sendInvoice") == []
    assert "nothing to buy" in b.tg.sent_texts(ROOT.id)[-1]
    await b.feed(b.tg.pre_checkout(ROOT, "sub:30:250", 250))
    answer = b.tg.calls_of("answerPreCheckoutQuery")[-1]
    assert answer.params["ok"] is False and "nothing to buy" in answer.params["error_message"]


async def test_setlevel_for_a_user_who_blocked_the_bot_still_sets_it(make_bot: BotFactory) -> None:
    b = await make_bot(ADMIN_IDS=str(ROOT.id))
    await b.feed(b.tg.message(ANN, "/start"))
    b.tg.block(ANN.id)
    await b.feed(b.tg.message(ROOT, "/setlevel @ann subscriber 7"))
    assert b.tg.sent_texts(ROOT.id)[-1] == "The level is set, but the user has blocked the bot and was not told."
    assert (await b.services.users.get(ANN.id)).level is Level.SUBSCRIBER  # type: ignore[union-attr]


async def test_help_is_written_in_each_users_language_with_this_bots_limits(make_bot: BotFactory) -> None:
    """/help and the menu are kept per language and limits: one user's language never leaks into
    another's reply, and two bots in one process with different limits each show their own."""
    first = await make_bot(DAILY_LIMIT_USER=7)
    for user in (ANN, OLGA, ANN):
        await first.feed(first.tg.message(user, "/help"))
    [ann_1, ann_2] = [m for m in first.tg.sent_messages(ANN.id)]
    [olga] = first.tg.sent_messages(OLGA.id)
    assert ann_1.result["text"] == ann_2.result["text"]
    assert "• User: 7" in ann_1.result["text"] and "Levels and daily limits" in ann_1.result["text"]
    assert "• Пользователь: 7" in olga.result["text"]
    assert ann_1.params["reply_markup"]["keyboard"][0][0]["text"] == "🎨 Generate"
    assert olga.params["reply_markup"]["keyboard"][0][0]["text"] == "🎨 Сгенерировать"

    second = await make_bot(DAILY_LIMIT_USER=3)
    await second.feed(second.tg.message(ANN, "/help"))
    assert "• User: 3" in second.tg.sent_messages(ANN.id)[-1].result["text"]
