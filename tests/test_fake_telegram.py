"""The fake Bot API must behave like Telegram for a real aiogram Bot, or every e2e test built on it lies.

Each test talks to :class:`tests.fakes.telegram.FakeTelegram` through aiogram itself (form-encoded
requests, result-type validation, exception mapping), so a mismatch with the library shows up here first.
"""

from __future__ import annotations

import asyncio
import html
import io
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    PreCheckoutQuery,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from PIL import Image

from tests.fakes.telegram import SECRET_HEADER, Delivery, FakeTelegram, FakeUser, parse_html

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


# --------------------------------------------------------------------------- webhook delivery

WEBHOOK_URL = "https://bot.example.com/telegram"
SECRET = "s3cret_-token"


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> None:  # noqa: ASYNC109
    """Poll a condition on state the fake does not signal (a tiny server's counters)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


class TinyFrontEnd:
    """A stand-in front end on 127.0.0.1: records every POST and answers what the test says.

    ``secret``: answer 401 to any other header, as aiogram's SimpleRequestHandler does. ``fail_first``:
    answer 503 to that many requests first. ``gate``: hold every request until it is set.
    """

    def __init__(self, *, secret: str | None = None, fail_first: int = 0, gate: asyncio.Event | None = None) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.gate = gate
        self.received: list[dict[str, object]] = []  # every request, answered or not
        self.accepted: list[int] = []  # update_ids answered 200
        self.in_flight = 0
        self.peak = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        update = await request.json()
        self.received.append(
            {
                "update": update,
                "secret": request.headers.get(SECRET_HEADER),
                "content_type": request.content_type,
            }
        )
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.secret is not None and request.headers.get(SECRET_HEADER) != self.secret:
                return web.Response(status=401, text="Unauthorized")
            if self.fail_first > 0:
                self.fail_first -= 1
                return web.Response(status=503, text="busy")
            self.accepted.append(update["update_id"])
            return web.json_response({})
        finally:
            self.in_flight -= 1

    async def __aenter__(self) -> TinyFrontEnd:
        app = web.Application()
        app.router.add_post("/webhook", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/webhook"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.gate is not None:
            self.gate.set()
        if self._runner is not None:
            await self._runner.cleanup()


async def test_webhook_set_info_and_get_updates_conflict(tg: FakeTelegram, bot: Bot) -> None:
    tg.push(tg.message(ALICE, "queued"))
    assert await bot.set_webhook(WEBHOOK_URL, secret_token=SECRET, max_connections=7) is True
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count, info.max_connections) == (WEBHOOK_URL, 1, 7)
    assert tg.webhook_settings[TOKEN]["secret_token"] == SECRET

    with pytest.raises(TelegramConflictError, match="can't use getUpdates method while webhook is active"):
        await bot.get_updates(timeout=0)

    assert await bot.delete_webhook() is True
    assert (await bot.get_webhook_info()).url == ""
    assert [u.message.text for u in await bot.get_updates(timeout=0) if u.message] == ["queued"]


async def test_setting_a_webhook_ends_a_pending_long_poll_with_409(tg: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as http:
        poll = asyncio.create_task(http.post(f"{tg.url}/bot{TOKEN}/getUpdates", data={"timeout": "30"}))
        await tg.wait_for("getUpdates", include_failed=True)
        await asyncio.sleep(0.05)
        async with http.post(f"{tg.url}/bot{TOKEN}/setWebhook", data={"url": WEBHOOK_URL}) as resp:
            assert resp.status == 200
        resp = await asyncio.wait_for(poll, 3)
        assert resp.status == 409
        assert "webhook is active" in (await resp.json())["description"]


async def test_set_webhook_rejects_what_telegram_rejects(tg: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="HTTPS URL must be provided"):
        await bot.set_webhook("http://bot.example.com/telegram")
    with pytest.raises(TelegramBadRequest, match="ports 80, 88, 443 or 8443"):
        await bot.set_webhook("https://bot.example.com:8080/telegram")
    with pytest.raises(TelegramBadRequest, match="unallowed characters"):
        await bot.set_webhook(WEBHOOK_URL, secret_token="no spaces!")
    assert tg.webhooks == {}

    tg.push(tg.message(ALICE, "lost on purpose"))
    assert await bot.set_webhook("https://bot.example.com:8443/t", drop_pending_updates=True) is True
    assert tg.pending_updates == []


async def test_delivery_is_round_robin_json_with_the_registered_secret(tg: FakeTelegram, bot: Bot) -> None:
    await bot.set_webhook(WEBHOOK_URL, secret_token=SECRET)
    async with TinyFrontEnd(secret=SECRET) as a, TinyFrontEnd(secret=SECRET) as b:
        ids = [await tg.send_text(ALICE, f"m{i}") for i in range(6)]
        tg.deliver_to([a.url, b.url])
        confirmations = [await tg.processed(update_id) for update_id in ids]

    assert all(isinstance(c, Delivery) and c.ok for c in confirmations)
    assert sorted(a.accepted + b.accepted) == ids
    assert len(a.accepted) == len(b.accepted) == 3
    assert all(r["secret"] == SECRET and r["content_type"] == "application/json" for r in a.received + b.received)
    first = next(r["update"] for r in a.received + b.received if r["update"]["update_id"] == ids[0])  # type: ignore[index]
    assert first["message"]["text"] == "m0" and first["message"]["from"]["id"] == ALICE.id  # type: ignore[index]
    assert tg.pending_updates == []
    assert (await bot.get_webhook_info()).pending_update_count == 0
    assert tg.delivered(ids[0]) is confirmations[0]


async def test_delivery_fails_over_when_a_front_end_is_down(tg: FakeTelegram, bot: Bot, closed_port_url: str) -> None:
    await bot.set_webhook(WEBHOOK_URL, secret_token=SECRET)
    down = f"{closed_port_url}/webhook"
    async with TinyFrontEnd(secret=SECRET) as up:
        ids = [await tg.send_text(ALICE, f"m{i}") for i in range(4)]
        tg.deliver_to([down, up.url])
        for update_id in ids:
            delivery = await tg.processed(update_id)
            assert isinstance(delivery, Delivery) and delivery.url == up.url

    assert sorted(up.accepted) == ids
    failed = tg.deliveries_to(down, ok=False)
    assert failed and all(d.status is None and "Connection refused" in (d.error or "") for d in failed)
    assert "Connection refused" in ((await bot.get_webhook_info()).last_error_message or "")


async def test_a_401_from_one_front_end_is_retried_on_another(tg: FakeTelegram, bot: Bot) -> None:
    await bot.set_webhook(WEBHOOK_URL, secret_token=SECRET)
    async with TinyFrontEnd(secret="a-different-secret") as wrong, TinyFrontEnd(secret=SECRET) as right:
        ids = [await tg.send_text(ALICE, f"m{i}") for i in range(4)]
        tg.deliver_to([wrong.url, right.url])
        for update_id in ids:
            await tg.processed(update_id)

    assert sorted(right.accepted) == ids and wrong.accepted == []
    assert wrong.received, "round-robin never tried the misconfigured front end"
    assert all(d.status == 401 for d in tg.deliveries_to(wrong.url))
    assert "Wrong response from the webhook: 401" in (tg.deliveries_to(wrong.url)[0].error or "")


async def test_when_every_front_end_fails_the_update_is_retried_not_lost(tg: FakeTelegram, bot: Bot) -> None:
    await bot.set_webhook(WEBHOOK_URL, secret_token=SECRET)
    async with TinyFrontEnd(fail_first=5) as flaky:
        update_id = await tg.send_text(ALICE, "keep me")
        tg.deliver_to([flaky.url], retry_delay=0.01, max_retry_delay=0.05)
        await tg.processed(update_id, timeout=5)

    attempts = tg.deliveries_to(flaky.url)
    assert [d.status for d in attempts] == [503] * 5 + [200]
    assert flaky.accepted == [update_id]
    assert "503" in ((await bot.get_webhook_info()).last_error_message or "")


async def test_a_front_end_that_hangs_times_out_and_the_next_one_gets_it(tg: FakeTelegram, bot: Bot) -> None:
    await bot.set_webhook(WEBHOOK_URL)
    async with TinyFrontEnd(gate=asyncio.Event()) as hanging, TinyFrontEnd() as healthy:
        update_id = await tg.send_text(ALICE, "hello")
        tg.deliver_to([hanging.url, healthy.url], timeout=0.3)
        delivery = await tg.processed(update_id, timeout=5)
    assert isinstance(delivery, Delivery) and delivery.url == healthy.url
    assert tg.deliveries_to(hanging.url)[0].error == "Read timeout expired"


async def test_deliveries_are_concurrent_up_to_max_connections(tg: FakeTelegram, bot: Bot) -> None:
    await bot.set_webhook(WEBHOOK_URL)
    for limit, expected_peak in ((None, 6), (2, 2)):
        gate = asyncio.Event()
        async with TinyFrontEnd(gate=gate) as slow:
            ids = [await tg.send_text(ALICE, f"m{i}") for i in range(6)]
            tg.deliver_to([slow.url], max_connections=limit)
            await eventually(lambda: slow.in_flight >= expected_peak)  # noqa: B023 - awaited in this iteration
            await asyncio.sleep(0.05)  # give a limit breach the chance to show
            assert slow.in_flight == expected_peak
            gate.set()
            for update_id in ids:
                await tg.processed(update_id)
            assert slow.peak == expected_peak
            await tg.stop_delivery()


async def test_nothing_is_delivered_without_a_webhook(tg: FakeTelegram, bot: Bot) -> None:
    async with TinyFrontEnd() as front:
        first = await tg.send_text(ALICE, "before setWebhook")
        tg.deliver_to([front.url])
        await asyncio.sleep(0.1)
        assert front.received == []  # like Telegram: no webhook set, nothing POSTed

        await bot.set_webhook(WEBHOOK_URL)
        await tg.processed(first)

        await bot.delete_webhook()  # e.g. one front end shutting down: delivery stops for all
        second = await tg.send_text(ALICE, "after deleteWebhook")
        await asyncio.sleep(0.1)
        assert front.accepted == [first]
        assert [u.update_id for u in await bot.get_updates(timeout=0)] == [second]


async def test_stop_delivery_keeps_in_flight_updates_queued(tg: FakeTelegram, bot: Bot) -> None:
    await bot.set_webhook(WEBHOOK_URL)
    async with TinyFrontEnd(gate=asyncio.Event()) as stuck:
        update_id = await tg.send_text(ALICE, "in flight")
        tg.deliver_to([stuck.url])
        await eventually(lambda: bool(stuck.received))
        await tg.stop_delivery()
    assert [u["update_id"] for u in tg.pending_updates] == [update_id]
    assert tg.delivered(update_id) is None
    with pytest.raises(AssertionError, match=f"update {update_id} was not confirmed"):
        await tg.processed(update_id, timeout=0.1)


async def test_aiogram_webhook_front_end_handles_delivered_updates(tg: FakeTelegram, bot: Bot) -> None:
    """The real SimpleRequestHandler accepts what the fake POSTs (JSON body, secret header)."""
    dp = Dispatcher()
    dp.include_router(echo_router())
    app = web.Application()
    SimpleRequestHandler(dp, bot, secret_token=SECRET, handle_in_background=False).register(app, path="/webhook")
    setup_application(app, dp, bot=bot)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhook"
    try:
        await bot.set_webhook(WEBHOOK_URL, secret_token=SECRET)
        update_id = await tg.send_text(ALICE, "over a <webhook>")
        tg.deliver_to([url])
        await tg.processed(update_id)
        assert tg.sent_texts(ALICE.id) == ["You said: over a <webhook>"]  # handled before the 200

        await tg.stop_delivery()
        rejected = await tg.send_text(ALICE, "forged")
        tg.deliver_to([url], secret="not-the-secret", retry_delay=0.5)
        await eventually(lambda: bool(tg.deliveries_to(url, ok=False)))
        assert tg.deliveries_to(url, ok=False)[0].status == 401
        assert tg.delivered(rejected) is None
    finally:
        await tg.stop_delivery()
        await runner.cleanup()
