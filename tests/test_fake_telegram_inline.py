"""The fake Bot API's inline mode, through a real aiogram Bot: answers are checked like Telegram checks
them, a chosen result's message is editable only when it carried a keyboard, and inline edits take a
file_id but never an upload (what the inline-mode e2e tests rely on)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputMediaPhoto,
    InputTextMessageContent,
)
from PIL import Image

from tests.fakes.telegram import INLINE_UPLOAD_REFUSED, FakeTelegram, FakeUser

TOKEN = "123456:TEST"
ALICE = FakeUser(id=42, first_name="Alice", username="alice")
KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="more", switch_inline_query_current_chat="")]]
)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def article(result_id: str, text: str, keyboard: InlineKeyboardMarkup | None = None) -> InlineQueryResultArticle:
    return InlineQueryResultArticle(
        id=result_id, title="t", input_message_content=InputTextMessageContent(message_text=text), reply_markup=keyboard
    )


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(tg.url))
    bot = Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    yield bot
    await bot.session.close()


async def test_answers_are_validated_and_recorded(tg: FakeTelegram, bot: Bot) -> None:
    assert (await bot.get_me()).supports_inline_queries is True
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_inline_query("999", [article("a", "hi")])
    query_id = tg.inline_query(ALICE, "fox")["inline_query"]["id"]
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.answer_inline_query(query_id, [article("a", "<b>fox")])
    with pytest.raises(TelegramBadRequest, match="RESULT_ID_DUPLICATE"):
        await bot.answer_inline_query(query_id, [article("a", "x"), article("a", "y")])
    with pytest.raises(TelegramBadRequest, match="START_PARAM_INVALID"):
        await bot.answer_inline_query(query_id, [], button=InlineQueryResultsButton(text="go", start_parameter="a b"))
    assert query_id not in tg.inline_answers
    await bot.answer_inline_query(query_id, [article("a", "<b>fox</b>")], cache_time=5, is_personal=True)
    answer = tg.inline_answers[query_id].params
    assert answer["results"][0]["input_message_content"]["parse_mode"] == "HTML" and answer["is_personal"] is True


async def test_only_a_result_with_a_keyboard_becomes_an_editable_message(tg: FakeTelegram, bot: Bot) -> None:
    query_id = tg.inline_query(ALICE, "fox")["inline_query"]["id"]
    await bot.answer_inline_query(query_id, [article("plain", "a fox"), article("kb", "<i>a fox</i>", KEYBOARD)])
    plain = tg.chosen_inline_result(ALICE, query_id, "plain")["chosen_inline_result"]
    assert "inline_message_id" not in plain and plain["query"] == "fox"
    chosen = tg.chosen_inline_result(ALICE, query_id, "kb")["chosen_inline_result"]
    inline_id = chosen["inline_message_id"]
    assert tg.inline_messages[inline_id]["text"] == "a fox"

    assert await bot.edit_message_text(text="drawing…", inline_message_id=inline_id) is True
    assert tg.inline_messages[inline_id]["text"] == "drawing…" and "reply_markup" not in tg.inline_messages[inline_id]
    with pytest.raises(TelegramBadRequest, match="not modified"):
        await bot.edit_message_text(text="drawing…", inline_message_id=inline_id)
    with pytest.raises(TelegramBadRequest, match="MESSAGE_ID_INVALID"):
        await bot.edit_message_text(text="x", inline_message_id="nope")


async def test_inline_media_edits_take_a_file_id_not_an_upload(tg: FakeTelegram, bot: Bot) -> None:
    query_id = tg.inline_query(ALICE, "fox")["inline_query"]["id"]
    await bot.answer_inline_query(query_id, [article("kb", "a fox", KEYBOARD)])
    inline_id = tg.chosen_inline_result(ALICE, query_id, "kb")["chosen_inline_result"]["inline_message_id"]
    upload = InputMediaPhoto(media=BufferedInputFile(_png(), "fox.png"))
    with pytest.raises(TelegramBadRequest, match="inline message"):
        await bot.edit_message_media(media=upload, inline_message_id=inline_id)
    assert INLINE_UPLOAD_REFUSED in tg.calls[-1].error  # type: ignore[operator]

    sent = await bot.send_photo(ALICE.id, BufferedInputFile(_png(), "fox.png"))
    assert sent.photo is not None
    file_id = sent.photo[-1].file_id
    media = InputMediaPhoto(media=file_id, caption="<b>fox</b>")
    assert await bot.edit_message_media(media=media, inline_message_id=inline_id, reply_markup=KEYBOARD) is True
    message = tg.inline_messages[inline_id]
    assert message["photo"][-1]["file_id"] == file_id and message["caption"] == "fox" and "text" not in message
    with pytest.raises(TelegramBadRequest, match="no text"):
        await bot.edit_message_text(text="back to text", inline_message_id=inline_id)
