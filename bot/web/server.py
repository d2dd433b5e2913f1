"""One aiohttp Application per process: /healthz, /metrics and (front ends in webhook mode) the webhook.

`serve` runs it on a TCP port and always cleans up, so start-up failures and cancellation leave no
listening socket behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.web.health import DEFAULT_TIMEOUT, Check, healthz_handler
from bot.web.metrics import Metrics

log = logging.getLogger(__name__)

METRICS_KEY = web.AppKey("metrics", Metrics)


def build_web_app(
    *, checks: Mapping[str, Check], metrics: Metrics | None, health_timeout: float = DEFAULT_TIMEOUT
) -> web.Application:
    """/healthz always; /metrics only when metrics are on (it is not routed through the public proxy)."""
    app = web.Application()
    app.router.add_get("/healthz", healthz_handler(checks, timeout=health_timeout), allow_head=True)
    if metrics is not None:
        app[METRICS_KEY] = metrics
        app.router.add_get("/metrics", _metrics_handler)
    return app


async def _metrics_handler(request: web.Request) -> web.Response:
    body = await request.app[METRICS_KEY].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


class DrainingRequestHandler(SimpleRequestHandler):
    """aiogram's handler, but shutdown waits (up to `grace` s) for updates still being handled, and
    leaves the bot's HTTP session to its owner.

    With handle_in_background Telegram has its 200 already, so an update cut off at shutdown is lost;
    aiogram itself does not wait for those tasks. aiogram would also close the bot session on app
    shutdown, under in-process workers that still deliver results with that bot. Relies on aiogram
    3.31's private task set.
    """

    def __init__(self, *args: Any, grace: float = 8.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grace = grace

    def register(self, app: web.Application, /, path: str, **kwargs: Any) -> None:
        # Drain first: hooks appended later (the dispatcher's shutdown) see no update still running.
        app.on_shutdown.append(self._drain)
        app.router.add_route("POST", path, self.handle, **kwargs)

    async def _drain(self, app: web.Application) -> None:
        await self.close()

    async def close(self) -> None:
        """Wait for running updates, cancel what outlives the grace; the bot session stays open."""
        pending = set(self._background_feed_update_tasks)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=self.grace)
        if late:
            log.warning("Shutdown: %d update(s) still running after %.1f s, cancelled", len(late), self.grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)


def add_webhook(
    app: web.Application,
    dp: Dispatcher,
    bot: Bot,
    path: str,
    secret: str,
    *,
    handle_in_background: bool = True,
    grace: float = 8.0,
    **workflow_data: Any,
) -> DrainingRequestHandler:
    """Route Telegram's POSTs at `path` into `dp`, rejecting (401) any without the secret header.

    Also ties the dispatcher's start-up/shutdown hooks to the app's (aiogram's setup_application);
    on app shutdown in-flight updates finish (up to `grace` s) before the dispatcher's shutdown hooks
    run. The bot's session is not closed here: whoever created the bot closes it.
    """
    if not secret:
        # aiogram accepts every request when the secret is empty: anyone could forge updates.
        raise ValueError("a webhook needs a non-empty secret")
    handler = DrainingRequestHandler(
        dispatcher=dp, bot=bot, secret_token=secret, handle_in_background=handle_in_background, grace=grace
    )
    handler.register(app, path=path)
    setup_application(app, dp, bot=bot, **workflow_data)
    return handler


@dataclass(frozen=True, slots=True)
class Listening:
    """Where `serve` actually listens (port 0 asks the OS for a free one)."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@asynccontextmanager
async def serve(
    app: web.Application, host: str, port: int, *, shutdown_timeout: float = 10.0
) -> AsyncIterator[Listening]:
    """Listen on host:port for the duration of the block; on exit stop accepting, finish, clean up."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        log.info("HTTP server listening on %s:%d", bound_host, bound_port)
        yield Listening(str(bound_host), int(bound_port))
    finally:
        await runner.cleanup()
