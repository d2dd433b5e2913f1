"""/stats sends a chart too: generations per day by provider, failure and fallback rates, 14 days."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from PIL import Image

from bot.clock import ManualClock
from bot.providers.base import ErrorKind
from tests.fakes.telegram import FakeUser

ROOT = FakeUser(id=821, first_name="Root", language_code="ru")
ANN = FakeUser(id=822, first_name="Ann")
BotFactory = Callable[..., Any]


async def test_stats_sends_a_png_chart_of_the_last_14_days(make_bot: BotFactory, clock: ManualClock) -> None:
    b = await make_bot(ADMIN_IDS=str(ROOT.id), DAILY_LIMIT_USER=10)
    clock.advance(timedelta(days=-20))  # outside the window: not counted
    await b.feed(b.tg.message(ANN, "old"))
    clock.advance(timedelta(days=18))
    await b.feed(b.tg.message(ANN, "one"))
    b.stubs["gemini"].outcomes = [ErrorKind.UNAVAILABLE]
    await b.feed(b.tg.message(ANN, "two"))  # made by FLUX Dev: a fallback
    clock.advance(timedelta(days=2))
    await b.feed(b.tg.message(ANN, "three"))
    for stub in b.stubs.values():
        stub.outcomes = [ErrorKind.UNAVAILABLE] * 3
    await b.feed(b.tg.message(ANN, "four"))  # every provider down: a failure

    days = await b.services.reports.daily(14)
    assert len(days) == 14 and days[-1].day == clock.today()
    assert [(d.by_provider, d.failed, d.fallbacks) for d in days if d.by_provider or d.failed] == [
        ({"gemini": 1, "hf-replicate": 1}, 0, 1),
        ({"gemini": 1}, 1, 0),
    ]
    assert days[-3].fallback_rate == 0.5 and days[-1].failure_rate == 0.5

    mark = b.tg.mark()
    await b.feed(b.tg.message(ROOT, "/stats"))
    [chart] = b.tg.calls_of("sendPhoto", ok=True, since=mark)
    with Image.open(io.BytesIO(chart.files["photo"])) as image:
        image.load()
        assert image.format == "PNG" and image.size == (900, 450)
    assert chart.result["caption"] == "Генерации по дням, последние 14 дн."
    assert b.tg.sent_texts(ROOT.id)[-1].startswith("Статистика")  # the numbers came first, as before


def test_the_bot_loads_matplotlib_only_when_a_chart_is_drawn() -> None:
    """About 30 MiB and a second of start-up that a bot whose admins never ask for /stats does not pay."""
    code = (
        "import sys, bot.__main__, bot.app, handlers\n"
        "print('matplotlib' in sys.modules)\n"
        "from bot.charts import ChartLabels, stats_chart_png\n"
        "stats_chart_png([], ChartLabels('t', 'i', 'r', 'f', 'b'))\n"
        "print('matplotlib' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
