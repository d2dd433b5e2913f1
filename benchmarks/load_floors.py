"""The floors `benchmarks.load` measures the real bot against: the least any aiogram bot can do.

    python -m benchmarks.load_floors bare    # every message (command or text) gets one text message
    python -m benchmarks.load_floors ideal   # commands get one message; any other text: sleep the
                                             # provider latency, then send one photo

Same aiogram long polling (defaults, as the bot uses them) and the same aiohttp session as the bot,
no database, no queue, no middleware. Environment: BOT_TOKEN, TELEGRAM_API_URL, LATENCY (seconds).
Stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BufferedInputFile, Message
from PIL import Image


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 90, 220)).save(buf, format="PNG")  # the size the provider fakes serve
    return buf.getvalue()


def build(kind: str, latency: float) -> Dispatcher:
    dp = Dispatcher()
    photo = _png()

    if kind == "bare":

        @dp.message()
        async def answer(message: Message) -> None:
            await message.answer("ok")

    else:

        @dp.message()
        async def answer_or_draw(message: Message) -> None:
            text = message.text or ""
            if text.startswith("/"):
                await message.answer("ok")
                return
            await asyncio.sleep(latency)
            await message.answer_photo(BufferedInputFile(photo, filename="image.png"), caption="done")

    return dp


async def run(kind: str) -> None:
    token = os.environ["BOT_TOKEN"]
    api = os.environ["TELEGRAM_API_URL"]
    latency = float(os.environ.get("LATENCY", "2.0"))
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(api)))
    dp = build(kind, latency)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def stopper() -> None:
        await stop.wait()
        await dp.stop_polling()

    task = asyncio.create_task(stopper())
    try:
        await dp.start_polling(bot, handle_signals=False)
    finally:
        task.cancel()
        await bot.session.close()


def main() -> int:
    kind = sys.argv[1] if len(sys.argv) > 1 else ""
    if kind not in ("bare", "ideal"):
        print("usage: python -m benchmarks.load_floors bare|ideal", file=sys.stderr)
        return 2
    asyncio.run(run(kind))
    return 0


if __name__ == "__main__":
    sys.exit(main())
