"""Shared by the HTTP API's end-to-end tests: the bot with its web app on a free port, and a key made
the way a user makes one (through /apikey and its button)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from openai import AsyncOpenAI

from bot.clock import ManualClock
from bot.web.server import serve
from keyboards.apikey import ApiKeyButton, KeyAction
from tests.harness import FakeUser, Harness

SECRET = "test-api-key-secret-0123456789"
KEY_RE = re.compile(r"sk-img-[0-9a-f]{12}-[A-Za-z0-9_-]{20,}")


@asynccontextmanager
async def api(tmp_path: Path, clock: ManualClock, **env: object) -> AsyncIterator[tuple[Harness, str]]:
    """The bot (polling the fake Bot API) and its web app served on a free port; yields the base URL."""
    async with Harness(tmp_path, clock, API_KEY_SECRET=SECRET, **env) as h:
        assert h.app is not None
        async with serve(h.app.web_app(), "127.0.0.1", 0) as where:
            yield h, where.url


def client(base: str, key: str) -> AsyncOpenAI:
    # No retries: a 429 or 5xx must reach the test as it was answered.
    return AsyncOpenAI(api_key=key, base_url=f"{base}/v1", max_retries=0, timeout=30)


async def new_key(h: Harness, user: FakeUser) -> str:
    """As a user would: /apikey, then ➕ New key; the key is read from the bot's message."""
    await h.say(user, "/apikey")
    since = h.tg.mark()
    await h.click(user, ApiKeyButton(action=KeyAction.NEW).pack())
    shown = [m for m in h.texts(user, since=since) if "sk-img-" in m]
    assert len(shown) == 1, shown
    match = KEY_RE.search(shown[0])
    assert match is not None
    return match.group(0)
