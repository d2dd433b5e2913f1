"""End-to-end harness: the real bot (BotApp: Dispatcher, polling loop, aiohttp session, SQLite)
against a fake Bot API server and fake provider servers, all on 127.0.0.1.

Settings reach the bot exactly as an operator sets them (TELEGRAM_API_URL, GEMINI_BASE_URL,
HF_ENDPOINT, HF_ROUTER_URL, REPLICATE_BASE_URL, POLLINATIONS_BASE_URL, keys, limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import select

from bot.app import BotApp
from bot.clock import ManualClock
from bot.config import Settings, load_settings
from models import DailyUsage, Generation, User
from tests.conftest import TOKEN
from tests.fakes.providers import FakeGemini, FakeHub, FakePollinations, FakeReplicate, image_color
from tests.fakes.telegram import Call, FakeTelegram, FakeUser

GEMINI_KEY = "AIza-test-gemini-key-0001"
HF_KEY = "hf_test_token_0002"
REPLICATE_KEY = "r8_test_token_0003"
SECRETS = (TOKEN, GEMINI_KEY, HF_KEY, REPLICATE_KEY)


class Harness:
    """Start with `async with Harness(tmp_path, clock, DAILY_LIMIT_USER=2) as h:`."""

    def __init__(
        self, tmp_path: Path, clock: ManualClock, *, handle_as_tasks: bool = False, keys: bool = True, **env: Any
    ) -> None:
        self.tmp_path = tmp_path
        self.clock = clock
        self.handle_as_tasks = handle_as_tasks
        self.keys = keys
        self.env = env
        self.tg = FakeTelegram()
        self.gemini = FakeGemini()
        self.hub = FakeHub()
        self.replicate = FakeReplicate()
        self.pollinations = FakePollinations()
        self.app: BotApp | None = None
        self._polling: asyncio.Task[None] | None = None

    @property
    def fakes(self) -> list[Any]:
        return [self.tg, self.gemini, self.hub, self.replicate, self.pollinations]

    def settings(self) -> Settings:
        """Written to a .env file and loaded the way an operator's is, under the documented names."""
        values: dict[str, Any] = {
            "BOT_TOKEN": TOKEN,
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.tmp_path / 'e2e.db'}",
            "TELEGRAM_API_URL": self.tg.url,
            "GEMINI_BASE_URL": self.gemini.url,
            "HF_ENDPOINT": self.hub.url,
            "HF_ROUTER_URL": self.replicate.url,
            "REPLICATE_BASE_URL": self.replicate.url,
            "POLLINATIONS_BASE_URL": self.pollinations.url,
            "GEMINI_TIMEOUT": 2,
            "HF_TIMEOUT": 3,
            "POLLINATIONS_TIMEOUT": 2,
            "BROADCAST_RATE": 30,
            # Functional tests talk to one chat fast; the pacing itself is tested in tests/coordination.
            "TELEGRAM_CHAT_BURST": 100,
            # Likewise one user may send many updates at once here; anti-flood is tested in tests/handlers.
            "FLOOD_BURST": 1000,
        }
        if self.keys:
            values |= {"GEMINI_API_KEY": GEMINI_KEY, "HF_TOKEN": HF_KEY, "REPLICATE_API_TOKEN": REPLICATE_KEY}
        values.update(self.env)
        env_file = self.tmp_path / ".env"
        env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
        return load_settings(env_file)

    async def __aenter__(self) -> Harness:
        for fake in self.fakes:
            await fake.start()
        await self.start_bot()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_bot()
        for fake in reversed(self.fakes):
            await fake.stop()

    async def start_bot(self) -> None:
        self.app = await BotApp.create(self.settings(), self.clock)
        for provider in self.app.services.providers:
            if hasattr(provider, "poll_interval"):
                provider.poll_interval = 0.05
        mark = self.tg.mark()
        self._polling = asyncio.create_task(
            self.app.run_polling(handle_signals=False, handle_as_tasks=self.handle_as_tasks, polling_timeout=1)
        )
        await self.tg.wait_for("getUpdates", since=mark, include_failed=True)

    async def stop_bot(self) -> None:
        if self.app is None or self._polling is None:
            return
        with contextlib.suppress(RuntimeError):
            await self.app.dp.stop_polling()
        await asyncio.wait_for(self._polling, 40)
        self.app, self._polling = None, None

    async def restart(self) -> None:
        await self.stop_bot()
        await self.start_bot()

    # --- acting as a user --------------------------------------------------------------------

    async def say(self, user: FakeUser, text: str, **extra: Any) -> int:
        """Send a text and, when updates are handled inline, wait until the bot has handled it."""
        update_id = await self.tg.send_text(user, text, **extra)
        if not self.handle_as_tasks:
            await self.tg.processed(update_id, timeout=30)
            await self.settle()
        return update_id

    async def settle(self) -> None:
        """Until the in-process workers have finished every job queued so far."""
        assert self.app is not None
        await asyncio.wait_for(self.app.services.queue.drained(), 60)

    async def push(self, update: dict[str, Any]) -> int:
        update_id = self.tg.push(update)
        if not self.handle_as_tasks:
            await self.tg.processed(update_id, timeout=30)
            await self.settle()
        return update_id

    async def click(self, user: FakeUser, data: str, message_id: int | None = None) -> int:
        return await self.push(self.tg.callback(user, data, message_id=message_id))

    def texts(self, user: FakeUser, since: int = 0) -> list[str]:
        return [c.result["text"] for c in self.tg.calls_of("sendMessage", ok=True, since=since, chat_id=user.id)]

    def photos(self, user: FakeUser, since: int = 0) -> list[Call]:
        return self.tg.calls_of("sendPhoto", ok=True, since=since, chat_id=user.id)

    # --- looking at state --------------------------------------------------------------------

    async def used_today(self, user_id: int) -> int:
        assert self.app is not None
        return (await self.app.services.quota.status(user_id, (await self.user(user_id)).level)).used  # type: ignore[arg-type]

    async def user(self, user_id: int) -> Any:
        assert self.app is not None
        return await self.app.services.users.get(user_id)

    async def generations(self) -> list[Generation]:
        assert self.app is not None
        async with self.app.services.sessions() as session:
            return list((await session.execute(select(Generation).order_by(Generation.id))).scalars())

    async def rows(self, model: type[Any]) -> list[Any]:
        assert self.app is not None
        async with self.app.services.sessions() as session:
            return list((await session.execute(select(model))).scalars())


def photo_bytes(call: Call) -> bytes:
    data = call.files.get("photo") or call.files.get("document")
    assert data, f"no uploaded file in {call}"
    return data


def photo_color(call: Call) -> tuple[int, int, int]:
    return image_color(photo_bytes(call))


def is_image(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
    return True


__all__ = ["SECRETS", "DailyUsage", "FakeUser", "Harness", "User", "is_image", "photo_bytes", "photo_color"]
