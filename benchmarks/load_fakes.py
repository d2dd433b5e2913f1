"""The fake Bot API and provider servers for `benchmarks.load`, in a child process, with a control API.

The load benchmark drives whole bot processes, so it cannot reach into the fakes: this process owns
them and answers a small JSON API on 127.0.0.1 (its URL is in the first line it prints):

    POST /telegram/reset              a fresh FakeTelegram (no calls, no queued updates); its URL
    POST /behave  {"seconds": S}      every provider fake answers after S seconds
    POST /push    {"messages": [[user_id, text], ...]}
                                      queue one message update per pair at once; answers the
                                      monotonic time right after the last one was queued
    POST /wait    {"method", "chats", "count", "since", "timeout"}
                                      until `count` successful calls of `method` to distinct chats
                                      of `chats` (or to any chat when null) arrived since call `since`
    GET  /mark                        how many calls were recorded so far
    GET  /calls?since=N               recorded calls since N, compact: see `_compact`
    GET  /polls                       getUpdates calls so far (a bot that polls is up)

Times are `time.monotonic()` (CLOCK_MONOTONIC: the same clock in every process on Linux), taken by
FakeTelegram when a request arrives. Nothing about the fakes' behaviour changes: the control API only
reads what they record and queues updates as a test would. Serves until stdin is closed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from aiohttp import web

from benchmarks.isolation import install_loopback_guard, scrub_environment


def _compact(call: Any) -> list[Any]:
    """[method, chat_id, time, status, message_id, text head, has file]"""
    result = call.result
    message_id = result.get("message_id") if isinstance(result, dict) else None
    text = call.text
    return [
        call.method,
        call.chat_id,
        call.time,
        call.status,
        message_id,
        text[:40] if text else None,
        bool(call.files),
    ]


class Control:
    def __init__(self) -> None:
        from tests.fakes.providers import FakeGemini, FakeHub, FakePollinations, FakeReplicate
        from tests.fakes.telegram import FakeTelegram, FakeUser

        self._telegram_cls = FakeTelegram
        self._user_cls = FakeUser
        self.telegram: Any = None
        self.providers = {
            "gemini": FakeGemini(),
            "hub": FakeHub(),
            "replicate": FakeReplicate(),  # also the HF router (it serves /replicate/...)
            "pollinations": FakePollinations(),
        }
        self._users: dict[int, Any] = {}

    async def start(self) -> dict[str, str]:
        for server in self.providers.values():
            await server.start()
        await self._new_telegram()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/telegram/reset", self.reset)
        app.router.add_post("/behave", self.behave)
        app.router.add_post("/push", self.push)
        app.router.add_post("/wait", self.wait)
        app.router.add_get("/mark", self.mark)
        app.router.add_get("/calls", self.calls)
        app.router.add_get("/polls", self.polls)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        return {"control": f"http://127.0.0.1:{port}", **{n: s.url for n, s in self.providers.items()}}

    async def stop(self) -> None:
        await self._runner.cleanup()
        if self.telegram is not None:
            await self.telegram.stop()
        for server in self.providers.values():
            await server.stop()

    async def _new_telegram(self) -> None:
        if self.telegram is not None:
            await self.telegram.stop()
        self.telegram = await self._telegram_cls().start()
        self._users.clear()

    def _user(self, user_id: int) -> Any:
        user = self._users.get(user_id)
        if user is None:
            user = self._users[user_id] = self._user_cls(id=user_id, first_name=f"User {user_id}")
        return user

    # --- endpoints -----------------------------------------------------------------------------

    async def reset(self, request: web.Request) -> web.Response:
        await self._new_telegram()
        return web.json_response({"url": self.telegram.url})

    async def behave(self, request: web.Request) -> web.Response:
        body = await request.json()
        for server in self.providers.values():
            server.behave("delay", seconds=float(body["seconds"]))
        return web.json_response({"ok": True})

    async def push(self, request: web.Request) -> web.Response:
        body = await request.json()
        tg = self.telegram
        updates = [tg.message(self._user(int(uid)), text) for uid, text in body["messages"]]
        for update in updates:  # no await in between: they are queued at the same moment
            tg.push(update)
        return web.json_response({"t": time.monotonic()})

    async def wait(self, request: web.Request) -> web.Response:
        body = await request.json()
        method = body["method"]
        chats = set(body["chats"]) if body.get("chats") is not None else None
        count = int(body["count"])
        deadline = time.monotonic() + float(body.get("timeout", 60))
        cursor = int(body.get("since", 0))
        pending: list[int] = []  # calls of `method` still without an answer
        seen: set[Any] = set()
        found = 0
        calls = self.telegram.calls

        def take(call: Any) -> None:
            nonlocal found
            if call.status == 200 and (chats is None or call.chat_id in chats):
                if chats is None:
                    found += 1
                elif call.chat_id not in seen:
                    seen.add(call.chat_id)
                    found += 1

        while True:
            still = []
            for index in pending:
                if calls[index].status is None:
                    still.append(index)
                else:
                    take(calls[index])
            pending = still
            end = len(calls)
            for index in range(cursor, end):
                call = calls[index]
                if call.method != method:
                    continue
                if call.status is None:
                    pending.append(index)
                else:
                    take(call)
            cursor = end
            if found >= count:
                return web.json_response({"ok": True, "found": found, "mark": end})
            if time.monotonic() >= deadline:
                return web.json_response({"ok": False, "found": found, "mark": end})
            await asyncio.sleep(0.02)

    async def mark(self, request: web.Request) -> web.Response:
        return web.json_response({"mark": len(self.telegram.calls)})

    async def calls(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        return web.json_response({"calls": [_compact(c) for c in self.telegram.calls[since:]]})

    async def polls(self, request: web.Request) -> web.Response:
        count = sum(1 for c in self.telegram.calls if c.method == "getUpdates")
        return web.json_response({"polls": count})


async def serve() -> None:
    control = Control()
    urls = await control.start()
    print(json.dumps(urls), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)  # until EOF
    await control.stop()


def main() -> None:
    scrub_environment()
    install_loopback_guard()
    asyncio.run(serve())


if __name__ == "__main__":
    main()
