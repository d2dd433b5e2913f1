"""/healthz and /metrics of the running bot reflect what it did (real HTTP, Prometheus text parsed)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.clock import ManualClock
from bot.web.server import serve
from tests.fakes.telegram import FakeUser
from tests.harness import Harness

pytestmark = pytest.mark.e2e
ANN = FakeUser(id=71, first_name="Ann")


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_generations_fallbacks_and_cool_downs(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        assert h.app is not None
        h.gemini.behave("status", status=503)
        for i in range(3):  # three outages in a row: Gemini rests
            await h.say(ANN, f"prompt {i}")
        async with serve(h.app.web_app(), "127.0.0.1", 0) as where, aiohttp.ClientSession() as http:
            async with http.get(f"{where.url}/healthz") as health:
                assert health.status == 200
                assert (await health.json())["checks"] == {"database": "ok", "queue": "ok"}
            async with http.get(f"{where.url}/metrics") as response:
                samples = _samples(await response.text())
        delivered = frozenset({("model", "gemini-flash"), ("provider", "hf-replicate"), ("status", "delivered")})
        assert samples[("imagebot_generations_total", delivered)] == 3
        assert (
            samples[("imagebot_fallbacks_total", frozenset({("requested", "gemini-flash"), ("used", "flux-dev")}))] == 3
        )
        assert samples[("imagebot_queue_depth", frozenset())] == 0
        assert samples[("imagebot_provider_cooldown", frozenset({("step", "gemini-flash")}))] == pytest.approx(30)
        assert samples[("imagebot_provider_cooldown", frozenset({("step", "flux-dev")}))] == 0
        clock.advance(timedelta(seconds=31))
        assert (await h.app.services.generation.cooldowns())["gemini-flash"] == 0
