"""The fake Bot API must behave like Telegram for a real aiogram Bot, or every e2e test built on it lies.

Each test talks to :class:`tests.fakes.telegram.FakeTelegram` through aiogram itself (form-encoded
requests, result-type validation, exception mapping), so a mismatch with the library shows up here first.
"""

from __future__ import annotations

import asyncio
import html
import io
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.filters import CommandStart
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    PreCheckoutQuery,
)
from PIL import Image

from tests.fakes.telegram import FakeTelegram, FakeUser, parse_html

TOKEN = "123456:TEST"
ALICE = FakeUser(id=42, first_name="Alice", username="alice")


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


def png(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def echo_router() -> Router:
    """Built per test: a Router can only ever be attached to one parent."""
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="FLUX", callback_data="pick:flux")]]
        )
        await message.answer("Pick a <b>model</b>", reply_markup=keyboard)

    @router.callback_query(F.data.startswith("pick:"))
    async def pick(query: CallbackQuery) -> None:
        await query.answer("Saved")
        assert isinstance(query.message, Message)
        await query.message.edit_text(f"Model: <b>{query.data.split(':', 1)[1]}</b>")

    @router.pre_checkout_query()
    async def pre_checkout(query: PreCheckoutQuery) -> None:
        await query.answer(ok=True)

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"You said: {html.escape(message.text or '')}")

    return router


@asynccontextmanager
async def polling(bot: Bot) -> AsyncIterator[Dispatcher]:
    """Run the real polling loop; on exit prove stop_polling ends it quickly (the long poll is woken)."""
    dp = Dispatcher()
    dp.include_router(echo_router())
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, handle_as_tasks=False))
    try:
        yield dp
    finally:
        started = time.monotonic()
        await asyncio.wait_for(dp.stop_polling(), 5)
        await asyncio.wait_for(task, 5)
        assert time.monotonic() - started < 3


async def test_echo_round_trip_through_real_polling(tg: FakeTelegram, bot: Bot) -> None:
    async with polling(bot):
        update_id = await tg.send_text(ALICE, "a <cat> & a dog")
        reply = await tg.wait_for("sendMessage", chat_id=ALICE.id)
        await tg.processed(update_id)

    assert reply.params["text"] == "You said: a &lt;cat&gt; &amp; a dog"
    assert reply.result["text"] == "You said: a <cat> & a dog"
    assert reply.params["parse_mode"] == "HTML"
    assert tg.sent_texts(ALICE.id) == ["You said: a <cat> & a dog"]
    assert tg.calls[0].method == "getMe"
    polls = tg.calls_of("getUpdates")
    assert polls[0].params["timeout"] == 10
    assert "message" in polls[0].params["allowed_updates"]


async def test_long_poll_honours_timeout_and_wakes_on_stop() -> None:
    async with FakeTelegram() as server, aiohttp.ClientSession() as http:
        url = f"{server.url}/bot{TOKEN}/getUpdates"
        started = time.monotonic()
        async with http.post(url, data={"timeout": "1"}) as resp:
            assert (await resp.json()) == {"ok": True, "result": []}
        assert 0.9 <= time.monotonic() - started < 3

        pending = asyncio.create_task(http.post(url, data={"timeout": "30"}))
        await server.wait_for("getUpdates", count=2, include_failed=True)
        started = time.monotonic()
        await server.stop()
        resp = await asyncio.wait_for(pending, 3)
        assert (await resp.json())["result"] == []
        assert time.monotonic() - started < 3


async def test_get_updates_offset_confirms_and_limit(tg: FakeTelegram) -> None:
    ids = [tg.push(tg.message(ALICE, f"m{i}")) for i in range(3)]
    async with aiohttp.ClientSession() as http:
        url = f"{tg.url}/bot{TOKEN}/getUpdates"
        async with http.post(url, data={"limit": "2"}) as resp:
            first = (await resp.json())["result"]
        async with http.post(url, data={"offset": str(ids[1] + 1)}) as resp:
            rest = (await resp.json())["result"]
    assert [u["update_id"] for u in first] == ids[:2]
    assert [u["update_id"] for u in rest] == ids[2:]
    assert [u["update_id"] for u in tg.pending_updates] == ids[2:]


async def test_forbidden_injection_raises_and_counts_down(tg: FakeTelegram, bot: Bot) -> None:
    rule = tg.fail("sendMessage", status=403, chat_id=ALICE.id)
    with pytest.raises(TelegramForbiddenError, match="blocked by the user"):
        await bot.send_message(ALICE.id, "hello")
    await bot.send_message(ALICE.id, "hello again")
    assert rule.hits == 1 and rule.exhausted
    assert [c.ok for c in tg.calls_of("sendMessage")] == [False, True]


async def test_retry_after_injection(tg: FakeTelegram, bot: Bot) -> None:
    tg.fail("sendPhoto", status=429, retry_after=7, times=None)
    for _ in range(2):
        with pytest.raises(TelegramRetryAfter) as caught:
            await bot.send_photo(ALICE.id, BufferedInputFile(png(), "a.png"))
        assert caught.value.retry_after == 7


@pytest.mark.parametrize(
    "text",
    ["1 < 2", "<b>bold</i>", "<div>x</div>", "<b>open", "tom & jerry", "close</b>", '<span class="x">s</span>'],
)
async def test_bad_html_is_rejected_like_telegram(tg: FakeTelegram, bot: Bot, text: str) -> None:
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(ALICE.id, text)
    assert tg.sent_messages() == []


async def test_valid_html_gives_plain_text_and_entities(bot: Bot) -> None:
    sent = await bot.send_message(
        ALICE.id, '<b>a &amp; b</b> <a href="https://x.org/?a=1&amp;b=2">link</a> &#128512; 2 &gt; 1'
    )
    assert sent.text == "a & b link 😀 2 > 1"
    assert sent.entities is not None
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [("bold", 0, 5), ("text_link", 6, 4)]
    assert sent.entities[1].url == "https://x.org/?a=1&b=2"


def test_parse_html_nesting_and_utf16_offsets() -> None:
    text, entities = parse_html('😀 <b>x<i>y</i></b><pre><code class="language-py">z</code></pre>')
    assert text == "😀 xyz"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 2},
        {"type": "italic", "offset": 4, "length": 1},
        {"type": "pre", "offset": 5, "length": 1, "language": "py"},
    ]


async def test_text_length_is_measured_after_markup(bot: Bot) -> None:
    await bot.send_message(ALICE.id, "<b>" + "x" * 4096 + "</b>")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(ALICE.id, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="text is empty"):
        await bot.send_message(ALICE.id, "<b> </b>")


async def test_caption_over_1024_is_rejected(tg: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_photo(ALICE.id, BufferedInputFile(png(), "a.png"), caption="y" * 1025)
    await bot.send_photo(ALICE.id, BufferedInputFile(png(), "a.png"), caption="<i>" + "y" * 1024 + "</i>")
    assert len(tg.sent_photos(ALICE.id)) == 1


async def test_send_photo_bytes_are_captured_and_downloadable(tg: FakeTelegram, bot: Bot) -> None:
    data = png(300, 200)
    sent = await bot.send_photo(ALICE.id, BufferedInputFile(data, "art.png"), caption="Done")
    call = tg.sent_photos(ALICE.id)[0]
    assert call.files["photo"] == data
    assert call.filenames["photo"] == "art.png"
    assert Image.open(io.BytesIO(call.files["photo"])).size == (300, 200)
    assert sent.photo is not None and (sent.photo[-1].width, sent.photo[-1].height) == (300, 200)
    assert sent.caption == "Done"
    downloaded = await bot.download(sent.photo[-1].file_id)
    assert downloaded is not None and downloaded.read() == data
    # Re-sending by file_id works, an unknown id does not.
    await bot.send_photo(ALICE.id, sent.photo[-1].file_id)
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(ALICE.id, "no-such-file")


async def test_broken_image_is_rejected(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(ALICE.id, BufferedInputFile(b"not an image", "a.png"))


async def test_document_send(tg: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_document(ALICE.id, BufferedInputFile(b"%PDF-1", "report.pdf"))
    assert sent.document is not None and sent.document.file_name == "report.pdf"
    assert tg.calls_of("sendDocument")[0].files["document"] == b"%PDF-1"


async def test_callback_query_round_trip(tg: FakeTelegram, bot: Bot) -> None:
    async with polling(bot):
        await tg.send_text(ALICE, "/start")
        menu = await tg.wait_for("sendMessage", chat_id=ALICE.id)
        assert menu.callback_datas == ["pick:flux"]
        assert menu.params["chat_id"] == ALICE.id  # form strings are decoded

        update_id = await tg.click(ALICE, "pick:flux")
        answer = await tg.wait_for("answerCallbackQuery")
        edit = await tg.wait_for("editMessageText")
        await tg.processed(update_id)

    assert answer.params["text"] == "Saved"
    assert edit.params["message_id"] == menu.result["message_id"]
    state = tg.message_state(ALICE.id, menu.result["message_id"])
    assert state is not None and state["text"] == "Model: flux" and "reply_markup" not in state


async def test_callback_data_over_64_bytes_is_rejected(bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="é" * 33)]]  # 66 bytes
    )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(ALICE.id, "pick", reply_markup=keyboard)


async def test_edit_to_same_text_is_not_modified(bot: Bot) -> None:
    sent = await bot.send_message(ALICE.id, "<b>Same</b>")
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(chat_id=ALICE.id, message_id=sent.message_id, text="<b>Same</b>")
    edited = await bot.edit_message_text(chat_id=ALICE.id, message_id=sent.message_id, text="<i>Same</i>")
    assert isinstance(edited, Message) and edited.edit_date is not None
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(chat_id=ALICE.id, message_id=999, text="x")


async def test_answer_callback_query_limits(tg: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("4242")  # no such query was ever made
    query_id = tg.callback(ALICE, "x")["callback_query"]["id"]
    with pytest.raises(TelegramBadRequest, match="MESSAGE_TOO_LONG"):
        await bot.answer_callback_query(query_id, text="z" * 201)
    await bot.answer_callback_query(query_id, text="ok", show_alert=True)
    assert tg.calls_of("answerCallbackQuery", ok=True)[0].params["show_alert"] is True


async def test_unknown_method_is_404(tg: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as http, http.post(f"{tg.url}/bot{TOKEN}/sendTelepathy") as resp:
        assert resp.status == 404
        assert await resp.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found: method not found",
        }


async def test_true_methods_and_commands(tg: FakeTelegram, bot: Bot) -> None:
    from aiogram.types import BotCommand

    assert await bot.delete_webhook(drop_pending_updates=True) is True
    assert await bot.set_my_commands([BotCommand(command="start", description="Start")]) is True
    assert await bot.send_chat_action(ALICE.id, "upload_photo") is True
    assert await bot.set_my_description("Draws pictures") is True
    assert tg.calls_of("setMyCommands")[0].params["commands"] == [{"command": "start", "description": "Start"}]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])
    me = await bot.get_me()
    assert me.id == 123456 and me.is_bot


async def test_blocked_user_gets_403_after_my_chat_member(tg: FakeTelegram, bot: Bot) -> None:
    tg.push(tg.my_chat_member(ALICE, new_status="kicked"))
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(ALICE.id, "still there?")
    tg.push(tg.my_chat_member(ALICE, new_status="member"))
    await bot.send_message(ALICE.id, "welcome back")


async def test_stars_payment_flow(tg: FakeTelegram, bot: Bot) -> None:
    from aiogram.types import LabeledPrice

    invoice = await bot.send_invoice(
        ALICE.id,
        title="Pro",
        description="30 days",
        payload="pro:30",
        currency="XTR",
        prices=[LabeledPrice(label="Pro", amount=100)],
    )
    assert invoice.invoice is not None and invoice.invoice.total_amount == 100
    assert tg.calls_of("sendInvoice")[0].params["prices"] == [{"label": "Pro", "amount": 100}]

    async with polling(bot):
        update_id = tg.push(tg.pre_checkout(ALICE, "pro:30", 100))
        await tg.wait_for("answerPreCheckoutQuery", ok=True)
        await tg.processed(update_id)

    tg.push(tg.successful_payment(ALICE, "pro:30", 100, charge_id="ch_1"))
    assert await bot.refund_star_payment(ALICE.id, "ch_1") is True
    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(ALICE.id, "ch_1")


async def test_wait_for_timeout_lists_recent_calls(tg: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest):
        await bot.send_message(ALICE.id, "<oops>")
    with pytest.raises(AssertionError) as caught:
        await tg.wait_for("sendMessage", chat_id=ALICE.id, timeout=0.2)
    report = str(caught.value)
    assert "timed out" in report and "sendMessage(" in report and "can't parse entities" in report
