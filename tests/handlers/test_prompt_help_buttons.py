"""/prompthelp and the buttons of prompt help and describe, through the real Dispatcher: the switch
is stored per user, and a button never acts on another user's job or on a job of the wrong kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy import select

from bot.i18n import create_i18n
from keyboards.prompt_help import prompt_help_button
from models import Generation
from tests.fakes.telegram import FakeUser

ANN = FakeUser(id=801, first_name="Ann", username="ann")
BOB = FakeUser(id=802, first_name="Bob", username="bob")
IVAN = FakeUser(id=803, first_name="Иван", username="ivan", language_code="ru")
BotFactory = Callable[..., Any]


async def _rows(b: Any) -> list[Generation]:
    async with b.services.sessions() as s:
        return list((await s.execute(select(Generation).order_by(Generation.id))).scalars())


async def test_the_switch_is_stored_per_user_and_a_double_tap_keeps_it(make_bot: BotFactory) -> None:
    b = await make_bot()
    prompts = b.services.prompts
    await b.feed(b.tg.message(ANN, "/prompthelp"))
    panel = b.tg.sent_messages(ANN.id)[-1]
    assert "Now: off." in panel.params["text"] and panel.callback_datas == ["ph:1:1"]
    assert "not available" in panel.params["text"]  # no HF_TOKEN here: the user is told their words are used
    for _ in range(2):  # a double tap sets "on" twice, it does not flip back
        await b.feed(b.tg.callback(ANN, "ph:1:1", message_id=panel.result["message_id"]))
    assert await prompts.enabled(ANN.id) and not await prompts.enabled(BOB.id)
    state = b.tg.message_state(ANN.id, panel.result["message_id"])
    assert state is not None and "Now: on." in state["text"]
    await b.feed(b.tg.callback(ANN, "ph:0:1", message_id=panel.result["message_id"]))
    assert not await prompts.enabled(ANN.id)


async def test_the_switch_works_as_a_row_on_another_screen(make_bot: BotFactory) -> None:
    """How a settings screen reuses it: its own text and buttons stay, only the switch is redrawn."""
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/start"))
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"):
        other = InlineKeyboardButton(text="Model", callback_data="pick:flux-dev")
        markup = InlineKeyboardMarkup(inline_keyboard=[[other], [prompt_help_button(False)]])
    screen = await b.bot.send_message(ANN.id, "Settings", reply_markup=markup)
    await b.feed(b.tg.callback(ANN, "ph:1:0", message_id=screen.message_id))
    assert await b.services.prompts.enabled(ANN.id)
    state = b.tg.message_state(ANN.id, screen.message_id)
    assert state is not None and state["text"] == "Settings"
    rows = state["reply_markup"]["inline_keyboard"]
    assert rows[0][0]["callback_data"] == "pick:flux-dev"
    assert (rows[1][0]["text"], rows[1][0]["callback_data"]) == ("✨ Prompt help: on", "ph:0:0")


async def test_settings_show_the_switch_and_flip_it_in_place(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/settings"))
    screen = b.tg.sent_messages(ANN.id)[-1]
    assert "ph:1:0" in screen.callback_datas
    await b.feed(b.tg.callback(ANN, "ph:1:0", message_id=screen.result["message_id"]))
    assert await b.services.prompts.enabled(ANN.id)
    state = b.tg.message_state(ANN.id, screen.result["message_id"])
    assert state is not None and state["text"] == screen.result["text"]  # the settings text stays
    datas = [button["callback_data"] for row in state["reply_markup"]["inline_keyboard"] for button in row]
    assert datas == [*screen.callback_datas[:-2], "ph:0:0", "set:reset:"]


async def test_the_panel_speaks_russian(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(IVAN, "/prompthelp"))
    panel = b.tg.sent_messages(IVAN.id)[-1]
    assert "Сейчас: выключен." in panel.params["text"]
    assert panel.buttons[0]["text"] == "✨ Помощник описаний: выкл"


async def test_buttons_do_not_act_on_someone_elses_job_or_the_wrong_kind(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "a lighthouse"))
    [anns] = await _rows(b)
    await b.feed(b.tg.callback(BOB, f"res:op:{anns.id}"))  # Ann's job, Bob's tap
    await b.feed(b.tg.callback(ANN, f"dsc:{anns.id}"))  # not a describe job
    await b.feed(b.tg.callback(ANN, "res:op:99999"))  # no such job
    assert len(await _rows(b)) == 1
    answers = [c.params.get("text", "") for c in b.tg.calls_of("answerCallbackQuery")]
    assert len(answers) == 3 and all("outdated" in a for a in answers)


async def test_use_my_own_words_runs_the_original_prompt_once_more(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "a lighthouse"))
    [first] = await _rows(b)
    await b.feed(b.tg.callback(ANN, f"res:op:{first.id}"))
    [_, second] = await _rows(b)
    assert (second.prompt, second.prompt_used, second.parent_id, second.status) == (
        "a lighthouse",
        "a lighthouse",
        first.id,
        "delivered",
    )
    assert len(b.tg.sent_photos(ANN.id)) == 2
