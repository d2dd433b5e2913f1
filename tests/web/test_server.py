"""The process's HTTP server: /metrics over real HTTP, clean start/stop, and the webhook route."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message
from prometheus_client import CONTENT_TYPE_LATEST

from bot.web.metrics import Metrics
from bot.web.server import add_webhook, build_web_app, serve
from tests.web.promtext import samples, value

SECRET = "s3cret_Token-1"
PATH = "/tg/webhook"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def offline_bot() -> Bot:
    """A bot whose API calls would go to a closed local port: nothing reaches the network."""
    api = TelegramAPIServer.from_base(f"http://127.0.0.1:{closed_port()}")
    return Bot("123456:abc", session=AiohttpSession(api=api))


def update(update_id: int, text: str) -> dict[str, Any]:
    chat = {"id": 42, "type": "private"}
    user = {"id": 42, "is_bot": False, "first_name": "Ann"}
    return {
        "update_id": update_id,
        "message": {"message_id": update_id, "date": 0, "chat": chat, "from": user, "text": text},
    }


async def test_metrics_endpoint_serves_the_registry(http: aiohttp.ClientSession) -> None:
    metrics = Metrics()
    metrics.job_finished("flux-dev", "hf-replicate", "delivered", 2.0, None)
    metrics.add_refresher(lambda: _set_depth(metrics, 4))
    app = build_web_app(checks={}, metrics=metrics)

    async with serve(app, "127.0.0.1", 0) as where, http.get(f"{where.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == CONTENT_TYPE_LATEST
        s = samples(await resp.text())

    assert value(s, "imagebot_generations_total", model="flux-dev", provider="hf-replicate", status="delivered") == 1
    assert value(s, "imagebot_queue_depth") == 4


async def _set_depth(metrics: Metrics, depth: int) -> None:
    metrics.set_queue_depth(depth)


async def test_without_metrics_there_is_no_metrics_route(http: aiohttp.ClientSession) -> None:
    app = build_web_app(checks={}, metrics=None)
    async with serve(app, "127.0.0.1", 0) as where:
        async with http.get(f"{where.url}/metrics") as resp:
            assert resp.status == 404
        async with http.head(f"{where.url}/healthz") as resp:
            assert resp.status == 200


async def test_serve_releases_the_port_on_exit_and_on_error(http: aiohttp.ClientSession) -> None:
    async with serve(build_web_app(checks={}, metrics=None), "127.0.0.1", 0) as where:
        port = where.port
        async with http.get(f"{where.url}/healthz") as resp:
            assert resp.status == 200

    with pytest.raises(RuntimeError):
        async with serve(build_web_app(checks={}, metrics=None), "127.0.0.1", port):
            raise RuntimeError("the bot failed to start")

    with pytest.raises(ConnectionRefusedError):  # nothing is left listening
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


async def test_serve_reports_a_taken_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            async with serve(build_web_app(checks={}, metrics=None), "127.0.0.1", taken.getsockname()[1]):
                pass


def echo_router(seen: list[str], arrived: asyncio.Event) -> Router:
    router = Router()

    @router.message()
    async def on_message(message: Message) -> None:
        seen.append(message.text or "")
        arrived.set()

    return router


async def test_webhook_with_the_secret_reaches_the_handler_and_without_it_gets_401(
    http: aiohttp.ClientSession,
) -> None:
    seen: list[str] = []
    arrived = asyncio.Event()
    dp = Dispatcher()
    dp.include_router(echo_router(seen, arrived))
    started = asyncio.Event()
    dp.startup.register(lambda: started.set())
    bot = offline_bot()
    app = build_web_app(checks={}, metrics=None)
    add_webhook(app, dp, bot, PATH, SECRET)

    async with serve(app, "127.0.0.1", 0) as where:
        url = f"{where.url}{PATH}"
        assert started.is_set(), "dispatcher start-up hooks run with the app"
        async with http.post(url, json=update(1, "forged"), headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as r:
            assert r.status == 401
        async with http.post(url, json=update(2, "no header")) as r:
            assert r.status == 401
        async with http.post(url, json=update(3, "hello"), headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as r:
            assert r.status == 200
        await asyncio.wait_for(arrived.wait(), 5)
        async with http.get(f"{where.url}/healthz") as r:
            assert r.status == 200, "health and webhook share one app"

    assert seen == ["hello"]
    await bot.session.close()  # the owner's job: in-process workers may still deliver with it


async def test_webhook_shutdown_lets_running_updates_finish_before_dispatcher_shutdown(
    http: aiohttp.ClientSession,
) -> None:
    entered = asyncio.Event()
    finished: list[str] = []
    router = Router()

    @router.message()
    async def slow(message: Message) -> None:
        entered.set()
        await asyncio.sleep(0.5)
        finished.append(message.text or "")

    dp = Dispatcher()
    dp.include_router(router)
    dp.shutdown.register(lambda: finished.append("dispatcher shutdown"))
    app = build_web_app(checks={}, metrics=None)
    add_webhook(app, dp, offline_bot(), PATH, SECRET, grace=5)

    async with serve(app, "127.0.0.1", 0) as where:
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        async with http.post(f"{where.url}{PATH}", json=update(1, "slow"), headers=headers) as r:
            assert r.status == 200  # answered at once; the handler is still running
        await asyncio.wait_for(entered.wait(), 5)
        assert finished == []

    assert finished == ["slow", "dispatcher shutdown"], "updates drain before the dispatcher's shutdown hooks"


async def test_webhook_refuses_an_empty_secret() -> None:
    bot = offline_bot()
    try:
        with pytest.raises(ValueError, match="secret"):
            add_webhook(build_web_app(checks={}, metrics=None), Dispatcher(), bot, PATH, "")
    finally:
        await bot.session.close()


async def test_webhook_shutdown_cancels_an_update_that_outlives_the_grace(http: aiohttp.ClientSession) -> None:
    entered, cancelled = asyncio.Event(), asyncio.Event()
    router = Router()

    @router.message()
    async def stuck(message: Message) -> None:
        entered.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    dp = Dispatcher()
    dp.include_router(router)
    app = build_web_app(checks={}, metrics=None)
    add_webhook(app, dp, offline_bot(), PATH, SECRET, grace=0.2)

    async with asyncio.timeout(5), serve(app, "127.0.0.1", 0) as where:
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        async with http.post(f"{where.url}{PATH}", json=update(1, "stuck"), headers=headers) as r:
            assert r.status == 200
        await entered.wait()

    assert cancelled.is_set()
