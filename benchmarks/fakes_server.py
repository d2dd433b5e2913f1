"""The test suite's fake Bot API and provider servers, run in a child process.

Keeping them out of the measured process means tracemalloc sees only the bot's allocations (the
fakes record every request they get, images included) and the bot's event loop is not shared with
the servers' work, as with a real Telegram or provider. Prints one JSON line with the URLs, then
serves until its stdin is closed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from benchmarks.isolation import install_loopback_guard, scrub_environment


async def serve() -> None:
    from tests.fakes.providers import FakeGemini, FakeHub, FakePollinations, FakeReplicate
    from tests.fakes.telegram import FakeTelegram

    telegram = await FakeTelegram().start()
    servers = {
        "telegram": telegram,
        "gemini": await FakeGemini().start(),
        "hub": await FakeHub().start(),
        "replicate": await FakeReplicate().start(),  # also the HF router (it serves /replicate/...)
        "pollinations": await FakePollinations().start(),
    }
    print(json.dumps({name: server.url for name, server in servers.items()}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)  # until EOF
    for server in reversed(servers.values()):
        await server.stop()


def main() -> None:
    scrub_environment()
    install_loopback_guard()
    asyncio.run(serve())


if __name__ == "__main__":
    main()
