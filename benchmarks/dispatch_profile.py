"""Where a command's CPU goes inside the process: /help through the real Dispatcher, no network.

    python -m benchmarks.dispatch_profile [--users 500] [--rounds 4] [--top 25]

`benchmarks.load` measures commands per second over real HTTP, where the socket work is the same for
every bot. This takes the network out: the Bot's session answers each call in memory (through
aiogram's own `check_response`, so parsing the reply still counts), and the same known users send
/help first to a bare aiogram Dispatcher with one handler, then to the bot's Dispatcher (SQLite file,
every router and middleware, as `python -m bot` builds it). It prints CPU per /help for both, their
ratio, and the bot's functions by own time under cProfile (deterministic; its overhead inflates small
functions, so read it for shares, not for absolute times). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import itertools
import json
import pstats
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.filters import Command
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Message, Update

TOKEN = "123456:BENCH-token-abcdef"


class MemorySession(BaseSession):
    """Answers every Bot API call at once; the reply still goes through aiogram's parsing."""

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 (aiogram's signature)
    ) -> Any:
        result: Any = True
        chat_id = getattr(method, "chat_id", None)
        if method.__returning__ is Message:
            chat = {"id": chat_id, "type": "private"}
            result = {"message_id": next(self._ids), "date": 0, "chat": chat, "text": "ok"}
        return self.check_response(bot, method, 200, json.dumps({"ok": True, "result": result}))

    async def stream_content(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        return None


def _update(update_id: int, user_id: int, text: str) -> dict[str, Any]:
    sender = {"id": user_id, "is_bot": False, "first_name": "User"}
    chat = {"id": user_id, "type": "private"}
    return {
        "update_id": update_id,
        "message": {"message_id": update_id, "date": 0, "chat": chat, "from": sender, "text": text},
    }


class Driver:
    def __init__(self, dispatcher: Dispatcher, bot: Bot, users: list[int]) -> None:
        self.dispatcher, self.bot, self.users = dispatcher, bot, users
        self._ids: Iterator[int] = itertools.count(1)

    async def send(self, text: str) -> None:
        for user in self.users:
            update = Update.model_validate(_update(next(self._ids), user, text), context={"bot": self.bot})
            await self.dispatcher.feed_update(self.bot, update)

    async def cpu_ms_per_command(self, text: str, rounds: int) -> float:
        started = time.process_time()
        for _ in range(rounds):
            await self.send(text)
        return (time.process_time() - started) / (rounds * len(self.users)) * 1000


def bare_dispatcher() -> Dispatcher:
    dispatcher = Dispatcher()

    @dispatcher.message(Command("start", "help"))
    async def answer(message: Message) -> None:
        await message.answer("help text")

    return dispatcher


async def bot_dispatcher(workdir: Path) -> tuple[Dispatcher, Any]:
    from bot.app import build_services, create_dispatcher
    from bot.config import Settings
    from bot.i18n import create_i18n

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        BOT_TOKEN=TOKEN,
        DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'bot.db'}",
        WORKERS=1,
    )
    services = await build_services(settings)
    return create_dispatcher(services, create_i18n()), services


async def run(users: int, rounds: int, top: int) -> None:
    ids = list(range(10_000, 10_000 + users))
    bare = Driver(bare_dispatcher(), Bot(TOKEN, session=MemorySession()), ids)
    with tempfile.TemporaryDirectory() as workdir:
        dispatcher, services = await bot_dispatcher(Path(workdir))
        bot = Driver(dispatcher, Bot(TOKEN, session=MemorySession()), ids)
        for driver in (bare, bot):  # known users, warm caches and imports
            await driver.send("/start")
            await driver.send("/help")
        bare_ms = await bare.cpu_ms_per_command("/help", rounds)
        bot_ms = await bot.cpu_ms_per_command("/help", rounds)
        profile = cProfile.Profile()
        profile.enable()
        await bot.send("/help")
        profile.disable()
        await services.aclose()
    print(f"/help, {users} known users × {rounds} rounds, no network:")
    print(f"  CPU ms per /help: bare {bare_ms:.3f}, bot {bot_ms:.3f} ({bot_ms / bare_ms:.2f}× bare)")
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    asyncio.run(run(args.users, args.rounds, args.top))


if __name__ == "__main__":
    main()
