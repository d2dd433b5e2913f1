"""/settings and per-prompt flags through the real Dispatcher (stub providers record what they get)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from bot.levels import Level
from bot.providers.base import ErrorKind
from bot.services.preferences import Preferences
from models import Generation, UserPreferences
from tests.fakes.telegram import FakeUser

ANN = FakeUser(id=701, first_name="Ann", username="ann")
OLGA = FakeUser(id=702, first_name="Ольга", language_code="ru")

BotFactory = Callable[..., Any]


async def _open_settings(b: Any, user: FakeUser = ANN, text: str = "/settings") -> int:
    await b.feed(b.tg.message(user, text))
    shown = b.tg.sent_messages(user.id)[-1]
    assert shown.reply_markup is not None
    return int(shown.result["message_id"])


async def _click(b: Any, data: str, message_id: int, user: FakeUser = ANN) -> None:
    await b.feed(b.tg.callback(user, data, message_id=message_id))


async def _stored(b: Any, user_id: int = ANN.id) -> UserPreferences | None:
    async with b.services.sessions() as session:
        return await session.get(UserPreferences, user_id)


async def _generations(b: Any) -> list[Generation]:
    async with b.services.sessions() as session:
        return list((await session.execute(select(Generation).order_by(Generation.id))).scalars())


async def _used(b: Any, user_id: int = ANN.id) -> int:
    return int((await b.services.quota.status(user_id, Level.USER)).used)


async def test_settings_show_every_option_and_a_choice_edits_the_message_in_place(make_bot: BotFactory) -> None:
    b = await make_bot()
    message_id = await _open_settings(b)
    shown = b.tg.sent_messages(ANN.id)[-1]
    assert shown.callback_datas == ["set:open:ar", "set:open:n", "set:open:seed", "set:open:neg", "set:open:style",
                                    "ph:1:0", "set:reset:"]  # fmt: skip
    assert "Aspect ratio: 1:1" in shown.result["text"] and "Seed: random" in shown.result["text"]
    assert await _stored(b) is None  # nothing written until something changes

    await _click(b, "set:open:ar", message_id)
    page = b.tg.message_state(ANN.id, message_id)
    assert page is not None and "aspect ratio" in page["text"]
    datas = [btn["callback_data"] for row in page["reply_markup"]["inline_keyboard"] for btn in row]
    assert "set:ar:16x9" in datas and datas[-1] == "set:home:"

    await _click(b, "set:ar:16x9", message_id)
    await _click(b, "set:open:n", message_id)
    await _click(b, "set:n:3", message_id)
    await _click(b, "set:open:style", message_id)
    await _click(b, "set:style:anime", message_id)
    home = b.tg.message_state(ANN.id, message_id)
    assert home is not None
    assert "Aspect ratio: 16:9" in home["text"] and "Images per prompt: 3" in home["text"]
    assert "Style: Anime" in home["text"]
    assert len(b.tg.sent_messages(ANN.id)) == 1  # every step edited the one message
    assert len(b.tg.calls_of("editMessageText", ok=True, chat_id=ANN.id)) == 6
    assert await b.services.preferences.get(ANN.id) == Preferences(aspect_ratio="16:9", count=3, style="anime")

    await _click(b, "set:reset:", message_id)
    assert await b.services.preferences.get(ANN.id) == Preferences()


async def test_stored_settings_reach_the_provider(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/start"))
    await b.services.preferences.update(ANN.id, aspect_ratio="9:16", seed=1234, negative_prompt="text", style="photo")
    await b.feed(b.tg.message(ANN, "a lighthouse"))
    [(_model, prompt, options)] = b.stubs["gemini"].calls
    assert prompt.startswith("a lighthouse. photorealistic")
    assert (options.aspect_ratio, options.seed, options.negative_prompt) == ("9:16", 1234, "text")
    [row] = await _generations(b)
    assert row.prompt == "a lighthouse"  # the user's words; the style lives in the options
    assert row.options["style"] == "photo"


async def test_a_typed_seed_and_negative_prompt_are_stored(make_bot: BotFactory) -> None:
    b = await make_bot()
    message_id = await _open_settings(b)
    await _click(b, "set:seed:type", message_id)
    assert "whole number" in (b.tg.message_state(ANN.id, message_id) or {})["text"]
    await b.feed(b.tg.message(ANN, "forty-two"))
    assert "A seed is a whole number" in b.tg.sent_texts(ANN.id)[-1]
    await b.feed(b.tg.message(ANN, "42"))
    assert "Seed: 42" in b.tg.sent_texts(ANN.id)[-1]

    message_id = int(b.tg.sent_messages(ANN.id)[-1].result["message_id"])
    await _click(b, "set:neg:type", message_id)
    await b.feed(b.tg.message(ANN, "  <b>text</b>,   watermark "))
    shown = b.tg.sent_messages(ANN.id)[-1]
    assert "Negative prompt: <b>text</b>, watermark" in shown.result["text"]  # escaped: shown as typed
    prefs = await b.services.preferences.get(ANN.id)
    assert (prefs.seed, prefs.negative_prompt) == (42, "<b>text</b>, watermark")
    # Neither typed text was taken as a prompt.
    assert await _generations(b) == [] and all(not s.calls for s in b.stubs.values())

    await _click(b, "set:seed:clear", message_id)
    assert (await b.services.preferences.get(ANN.id)).seed is None


async def test_cancel_leaves_typing_and_the_next_text_is_a_prompt_again(make_bot: BotFactory) -> None:
    b = await make_bot()
    message_id = await _open_settings(b)
    await _click(b, "set:seed:type", message_id)
    await b.feed(b.tg.message(ANN, "/cancel"))
    await b.feed(b.tg.message(ANN, "77"))
    assert (await b.services.preferences.get(ANN.id)).seed is None
    assert len(await _generations(b)) == 1


async def test_forged_settings_callbacks_are_refused(make_bot: BotFactory) -> None:
    b = await make_bot()
    message_id = await _open_settings(b)
    for data in ("set:ar:5x4", "set:n:9", "set:n:-1", "set:style:vaporwave", "set:open:admin", "set:drop:all"):
        await _click(b, data, message_id)
        answer = b.tg.calls_of("answerCallbackQuery")[-1]
        assert answer.params["show_alert"] is True and "does not exist" in answer.params["text"], data
    assert await _stored(b) is None


async def test_the_settings_button_works_in_russian(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(OLGA, "/start"))
    menu = b.tg.sent_messages(OLGA.id)[-1].params["reply_markup"]["keyboard"]
    assert "⚙️ Настройки" in [btn["text"] for row in menu for btn in row]
    await _open_settings(b, OLGA, "⚙️ Настройки")
    shown = b.tg.sent_messages(OLGA.id)[-1]
    assert "Соотношение сторон: 1:1" in shown.result["text"]
    assert shown.buttons[0]["text"] == "📐 Соотношение сторон: 1:1"


async def test_flags_override_settings_for_one_prompt(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/start"))
    await b.services.preferences.update(ANN.id, aspect_ratio="4:3", count=2, style="anime")
    await b.feed(b.tg.message(ANN, "a fox --ar 9:16 --n 1 --seed 5 --style none --no people"))
    [(_model, prompt, options)] = b.stubs["gemini"].calls
    assert prompt == "a fox"
    assert (options.aspect_ratio, options.count, options.seed, options.negative_prompt) == ("9:16", 1, 5, "people")
    assert await _used(b) == 1
    assert await b.services.preferences.get(ANN.id) == Preferences(aspect_ratio="4:3", count=2, style="anime")


async def test_a_malformed_or_unknown_flag_is_named_and_nothing_is_charged(make_bot: BotFactory) -> None:
    b = await make_bot()
    for text, named in (
        ("a fox --n 9", "--n"),
        ("a fox --ar wide", "--ar"),
        ("a fox --seed", "--seed"),
        ("a fox --<b>x</b>", "--&lt;b&gt;x&lt;/b&gt;"),
        ("a fox --style vaporwave", "--style"),
    ):
        await b.feed(b.tg.message(ANN, text))
        hint = b.tg.sent_messages(ANN.id)[-1]
        assert named in hint.params["text"] and "\n" not in hint.result["text"], text
    assert "Unknown option --&lt;b&gt;x&lt;/b&gt;" in b.tg.sent_messages(ANN.id)[-2].params["text"]
    assert await _generations(b) == []
    assert await _used(b) == 0
    assert all(not s.calls for s in b.stubs.values())


async def test_asking_for_more_images_than_are_left_says_how_many_fit(make_bot: BotFactory) -> None:
    b = await make_bot(DAILY_LIMIT_USER=3)
    await b.feed(b.tg.message(ANN, "one"))
    await b.feed(b.tg.message(ANN, "four foxes --n 4"))
    assert "Only 2 images are left today" in b.tg.sent_texts(ANN.id)[-1]
    assert await _used(b) == 1


async def test_four_images_arrive_as_one_album_and_four_units_are_charged(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "four foxes --n 4 --seed 10"))
    assert "Generating 4 images with Gemini Flash" in b.tg.sent_texts(ANN.id)[0]
    [album] = b.tg.calls_of("sendMediaGroup", ok=True, chat_id=ANN.id)
    assert len(album.result) == 4 and b.tg.sent_photos(ANN.id) == []
    captions = [item.get("caption") for item in album.result]
    assert captions[1:] == [None, None, None]
    assert "Seeds 10, 11, 12, 13" in captions[0] and "four foxes" in captions[0] and "1 of 5" in captions[0]
    assert await _used(b) == 4
    [row] = await _generations(b)
    assert row.status == "delivered" and row.units == 4 and row.sent_message_id == album.result[0]["message_id"]


async def test_one_image_of_four_failing_everywhere_is_not_charged(make_bot: BotFactory) -> None:
    b = await make_bot()
    b.stubs["hf"]._configured = False
    b.stubs["pollinations"]._configured = False
    b.stubs["gemini"].outcomes = ["ok", ErrorKind.UNAVAILABLE, "ok", "ok"]
    await b.feed(b.tg.message(ANN, "four foxes --n 4"))
    [album] = b.tg.calls_of("sendMediaGroup", ok=True, chat_id=ANN.id)
    assert len(album.result) == 3
    assert await _used(b) == 3
    [row] = await _generations(b)
    assert row.status == "delivered" and row.units == 3


async def test_an_album_telegram_keeps_failing_costs_nothing(make_bot: BotFactory) -> None:
    b = await make_bot()
    b.tg.fail("sendMediaGroup", status=502, times=None)
    await b.feed(b.tg.message(ANN, "two foxes --n 2"))
    assert len(b.tg.calls_of("sendMediaGroup", chat_id=ANN.id)) == 3  # retried, bounded
    assert "Telegram would not take it" in b.tg.sent_texts(ANN.id)[-1]
    assert await _used(b) == 0
    [row] = await _generations(b)
    assert row.status == "undelivered" and row.sent_message_id is None


async def test_settings_stay_out_of_groups(make_bot: BotFactory) -> None:
    b = await make_bot()
    group = {"id": -100123, "type": "supergroup", "title": "Artists"}
    await b.feed(b.tg.message(ANN, "/settings", chat=group))
    assert b.tg.calls_of("sendMessage", chat_id=group["id"]) == []
    # A settings button under a message in a group (forged, or forwarded there) changes nothing.
    await b.feed(b.tg.callback(ANN, "set:n:4", chat_id=group["id"]))
    answer = b.tg.calls_of("answerCallbackQuery")[-1]
    assert answer.params["show_alert"] is True and "private chat" in answer.params["text"]
    assert await _stored(b) is None
