"""Metrics: what a worker reports is what a scrape reads, and a broken refresher never breaks a scrape."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.web.metrics import Metrics
from tests.web.promtext import samples, value


async def test_a_finished_job_counts_by_model_provider_and_status() -> None:
    m = Metrics()
    m.job_finished("flux-dev", "hf-replicate", "delivered", 12.5, None)
    m.job_finished("flux-dev", "hf-replicate", "delivered", 3.0, None)
    m.job_finished("flux-pro", None, "failed", 40.0, None)

    s = samples(await m.render())

    total = "imagebot_generations_total"
    assert value(s, total, model="flux-dev", provider="hf-replicate", status="delivered") == 2
    assert value(s, total, model="flux-pro", provider="none", status="failed") == 1
    assert value(s, "imagebot_generation_seconds_count", model="flux-dev") == 2
    assert value(s, "imagebot_generation_seconds_sum", model="flux-dev") == pytest.approx(15.5)
    assert value(s, "imagebot_generation_seconds_bucket", model="flux-dev", le="5.0") == 1
    assert value(s, "imagebot_generation_seconds_bucket", model="flux-dev", le="300.0") == 2


async def test_a_fallback_is_counted_from_requested_to_used_model() -> None:
    m = Metrics()
    m.job_finished("gemini-flash", "pollinations", "delivered", 4.0, "pollinations")
    m.job_finished("gemini-flash", "gemini", "delivered", 2.0, "gemini-flash")  # the model asked for: no fallback

    s = samples(await m.render())

    assert value(s, "imagebot_fallbacks_total", requested="gemini-flash", used="pollinations") == 1
    assert value(s, "imagebot_fallbacks_total", requested="gemini-flash", used="gemini-flash") is None


async def test_queue_wait_in_flight_and_redeliveries() -> None:
    m = Metrics()
    m.job_started(0.3)
    m.job_started(-2.0)  # another host's clock ahead of ours: counted as no wait
    m.redelivered()

    with m.in_flight(), m.in_flight():
        during = samples(await m.render())
    with pytest.raises(RuntimeError), m.in_flight():
        raise RuntimeError("job crashed")
    after = samples(await m.render())

    assert value(during, "imagebot_jobs_in_flight") == 2
    assert value(after, "imagebot_jobs_in_flight") == 0
    assert value(after, "imagebot_queue_wait_seconds_count") == 2
    assert value(after, "imagebot_queue_wait_seconds_bucket", le="0.05") == 1
    assert value(after, "imagebot_queue_wait_seconds_sum") == pytest.approx(0.3)
    assert value(after, "imagebot_job_redeliveries_total") == 1


async def test_refreshers_fill_gauges_at_scrape_time() -> None:
    m = Metrics()
    depth = {"n": 3}
    cooldowns = {"gemini-flash": 30.0, "flux-dev": 0.0}

    async def queue() -> None:
        m.set_queue_depth(depth["n"])

    async def chain() -> None:
        m.set_cooldowns(cooldowns)

    m.add_refresher(queue)
    m.add_refresher(chain)

    first = samples(await m.render())
    depth["n"] = 7
    cooldowns.pop("gemini-flash")
    second = samples(await m.render())

    assert value(first, "imagebot_queue_depth") == 3
    assert value(first, "imagebot_provider_cooldown", step="gemini-flash") == 30
    assert value(first, "imagebot_provider_cooldown", step="flux-dev") == 0
    assert value(second, "imagebot_queue_depth") == 7
    assert value(second, "imagebot_provider_cooldown", step="gemini-flash") is None


async def test_a_failing_or_hanging_refresher_is_logged_and_the_scrape_still_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    m = Metrics(refresh_timeout=0.2)
    cancelled = asyncio.Event()

    async def broken() -> None:
        raise ConnectionError("redis://:hunter2@redis:6379/0 refused")

    async def hanging() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def fine() -> None:
        m.set_queue_depth(5)

    for fn in (broken, hanging, fine):
        m.add_refresher(fn)

    with caplog.at_level(logging.WARNING, logger="bot.web.metrics"):
        s = samples(await asyncio.wait_for(m.render(), 5))

    assert value(s, "imagebot_queue_depth") == 5
    assert cancelled.is_set()
    assert "ConnectionError" in caplog.text and "TimeoutError" in caplog.text
    assert "hunter2" not in caplog.text


async def test_each_instance_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.redelivered()

    assert value(samples(await a.render()), "imagebot_job_redeliveries_total") == 1
    assert value(samples(await b.render()), "imagebot_job_redeliveries_total") == 0


async def test_updates_are_counted_by_type_through_the_dispatcher() -> None:
    from aiogram import Bot, Dispatcher
    from aiogram.types import Update

    from bot.web.middleware import UpdateCounter

    m = Metrics()
    dp = Dispatcher()
    dp.update.outer_middleware(UpdateCounter(m))
    bot = Bot("123456:abc")
    message = {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "hi"}
    try:
        await dp.feed_update(bot, Update.model_validate({"update_id": 1, "message": message}))
        await dp.feed_update(bot, Update.model_validate({"update_id": 2, "edited_message": message}))
        await dp.feed_update(bot, Update.model_validate({"update_id": 3, "message": message}))
    finally:
        await bot.session.close()

    s = samples(await m.render())
    assert value(s, "imagebot_updates_total", type="message") == 2
    assert value(s, "imagebot_updates_total", type="edited_message") == 1
