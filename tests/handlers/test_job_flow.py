"""Prompts as jobs, through the real Dispatcher and the in-process workers: the handler answers at
once, a user's extra prompts wait their turn, /cancel withdraws them, a blocked user costs nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.app import attach_worker
from bot.catalog import ModelId
from bot.i18n import create_i18n
from bot.levels import Level
from bot.web.metrics import Metrics
from models import Generation, GenerationStatus
from tests.fakes.telegram import FakeUser
from tests.sql_trace import statements

ANN = FakeUser(id=601, first_name="Ann")
BotFactory = Callable[..., Any]


async def _statuses(b: Any) -> list[str]:
    async with b.services.sessions() as s:
        return [r.status for r in (await s.execute(select(Generation).order_by(Generation.id))).scalars()]


async def test_the_handler_answers_before_the_image_is_made(make_bot: BotFactory) -> None:
    b = await make_bot()
    b.stubs["gemini"].delay = 0.5
    await b.feed(b.tg.message(ANN, "a lighthouse"), settle=False)
    assert "Generating with Gemini Flash" in b.tg.sent_texts(ANN.id)[-1]
    assert b.tg.sent_photos(ANN.id) == []  # the worker is still at it
    await b.services.queue.drained()
    assert len(b.tg.sent_photos(ANN.id)) == 1
    assert await _statuses(b) == [GenerationStatus.DELIVERED]
    assert b.tg.calls_of("deleteMessage", ok=True)  # the status line goes once the image is there


async def test_extra_prompts_wait_their_turn_and_cancel_gives_their_units_back(make_bot: BotFactory) -> None:
    b = await make_bot(INFLIGHT_CAP="user:1", QUEUE_MAX_PER_USER=2, DAILY_LIMIT_USER=10)
    b.stubs["gemini"].delay = 0.3
    for prompt in ("one", "two", "three", "four"):
        await b.feed(b.tg.message(ANN, prompt), settle=False)
    texts = b.tg.sent_texts(ANN.id)
    assert "Generating" in texts[0]
    assert texts[1].startswith("⏳ Queued with Gemini Flash") and texts[2].startswith("⏳ Queued")
    assert "already have 3 images on the way" in texts[3]
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 3

    await b.feed(b.tg.message(ANN, "/cancel"), settle=False)
    assert "Cancelled waiting images: 2. Returned to today's limit: 2." in b.tg.sent_texts(ANN.id)[-1]
    await b.services.queue.drained()
    assert len(b.tg.sent_photos(ANN.id)) == 1
    assert [p for _, p, _ in b.stubs["gemini"].calls] == ["one"]
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 1
    assert await _statuses(b) == ["delivered", "cancelled", "cancelled"]


async def test_waiting_prompts_run_one_after_another(make_bot: BotFactory) -> None:
    b = await make_bot(INFLIGHT_CAP="user:1", QUEUE_MAX_PER_USER=3)
    b.stubs["gemini"].delay = 0.1
    for prompt in ("one", "two", "three"):
        await b.feed(b.tg.message(ANN, prompt), settle=False)
    await b.services.queue.drained()
    assert [p for _, p, _ in b.stubs["gemini"].calls] == ["one", "two", "three"]
    captions = [c.result["caption"] for c in b.tg.sent_photos(ANN.id)]
    assert [c.rsplit("📝 ", 1)[1].split("\n")[0] for c in captions] == ["one", "two", "three"]
    assert "Images left today: 2 of 5" in captions[-1]


async def test_a_user_who_blocked_the_bot_mid_generation_costs_nothing_and_logs_one_line(
    make_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    b = await make_bot()
    b.stubs["gemini"].delay = 0.3
    await b.feed(b.tg.message(ANN, "a fox"), settle=False)
    b.tg.block(ANN.id)
    caplog.set_level(logging.INFO)
    await b.services.queue.drained()
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 0
    user = await b.services.users.get(ANN.id)
    assert user is not None and user.blocked_bot
    assert await _statuses(b) == [GenerationStatus.UNDELIVERED]
    assert "blocked the bot" in caplog.text and "Traceback" not in caplog.text


async def test_a_job_whose_worker_died_too_often_is_given_up_refunded_and_the_user_told(
    make_bot: BotFactory, clock: Any
) -> None:
    b = await make_bot(JOB_MAX_ATTEMPTS=1)
    await b.feed(b.tg.message(ANN, "/start"))
    submitted = await b.services.jobs.submit(
        user_id=ANN.id, chat_id=ANN.id, level=Level.USER, prompt="a fox", model=ModelId.GEMINI_FLASH
    )
    assert await b.services.jobs.claim("a-worker-that-died", timedelta(seconds=60)) is not None
    clock.advance(timedelta(seconds=61))  # its lease ran out
    assert submitted.generation_id is not None
    await b.services.queue.enqueue(submitted.generation_id)
    await b.services.queue.drained()
    assert "failed several times and was stopped" in b.tg.sent_texts(ANN.id)[-1]
    assert b.stubs["gemini"].calls == []
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 0
    async with b.services.sessions() as s:
        row = await s.get(Generation, submitted.generation_id)
        assert row is not None and (row.status, row.error_class) == ("failed", "DeadLetter")


async def test_a_stopping_worker_takes_no_new_job(make_bot: BotFactory) -> None:
    """A message taskiq starts after SIGTERM must not be claimed: its job would outlive the grace period."""
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/start"))
    worker = attach_worker(b.services, b.bot, create_i18n())  # replaces the fixture's as the queue's handler
    await worker.stop(grace=0)
    submitted = await b.services.jobs.submit(
        user_id=ANN.id, chat_id=ANN.id, level=Level.USER, prompt="a fox", model=ModelId.GEMINI_FLASH
    )
    assert submitted.generation_id is not None
    await b.services.queue.enqueue(submitted.generation_id)
    await b.services.queue.drained()
    assert b.stubs["gemini"].calls == []
    assert await _statuses(b) == [GenerationStatus.QUEUED]  # left for another worker


async def test_a_job_taken_over_before_its_delivery_is_recorded_is_left_to_the_new_holder(
    make_bot: BotFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lease lapsed while the photo was being sent (a loaded machine) and another worker claimed the
    job: this worker records nothing and counts no delivery; the units stay reserved for the holder."""
    b = await make_bot()
    metrics = Metrics()
    worker = attach_worker(b.services, b.bot, create_i18n(), metrics=metrics)
    jobs = b.services.jobs
    real_settle = jobs.settle_sent

    async def taken_over_first(generation_id: int, owner: str, *args: Any, **kwargs: Any) -> Any:
        async with b.services.sessions.begin() as session:  # what another worker's claim writes
            await session.execute(
                update(Generation).where(Generation.id == generation_id).values(lease_owner="other-worker")
            )
        return await real_settle(generation_id, owner, *args, **kwargs)

    monkeypatch.setattr(jobs, "settle_sent", taken_over_first)
    await b.feed(b.tg.message(ANN, "a lighthouse"))
    assert len(b.tg.sent_photos(ANN.id)) == 1
    delivered = metrics.registry.get_sample_value(
        "imagebot_generations_total", {"model": "gemini-flash", "provider": "gemini", "status": "delivered"}
    )
    lost = metrics.registry.get_sample_value(
        "imagebot_generations_total", {"model": "gemini-flash", "provider": "gemini", "status": "lease_lost"}
    )
    assert (delivered, lost) == (None, 1.0)
    assert worker.owner != "other-worker"
    async with b.services.sessions() as session:
        row = (await session.execute(select(Generation))).scalar_one()
    assert (row.status, row.lease_owner, row.sent_message_id, row.units) == (
        GenerationStatus.RUNNING,
        "other-worker",
        None,
        1,
    )


async def test_a_prompt_costs_five_write_transactions_and_two_reads(make_bot: BotFactory) -> None:
    """The database budget of a typed prompt from a known user, front end and worker together:
    reads: the user with their /settings, today's quota for the caption; writes: submit, the status
    message id, claim, the lease renewed before sending, and the settling write (message id, close,
    kept file ids and originals in one transaction)."""
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/start"))
    with statements(b.services.engine) as seen:
        await b.feed(b.tg.message(ANN, "a lighthouse"))
    assert len(b.tg.sent_photos(ANN.id)) == 1
    assert await _statuses(b) == [GenerationStatus.DELIVERED]
    begins = [sql for sql in seen if sql.startswith("BEGIN")]
    assert begins.count("BEGIN IMMEDIATE") == 5
    assert begins.count("BEGIN") == 2
    assert "user_preferences" in seen[seen.index("BEGIN") + 1]  # read with the user, not on its own


async def test_images_that_cannot_be_kept_never_cost_the_record_of_their_delivery(
    make_bot: BotFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Working out what to keep fails (an unexpected reply shape, say): the photo went out once, the job
    is delivered and charged once, and the log says what was not kept."""

    def broken(*args: Any) -> Any:
        raise KeyError("photo")

    monkeypatch.setattr("bot.worker.kept_images", broken)
    b = await make_bot()
    with caplog.at_level(logging.WARNING, "bot.services.jobs"):
        await b.feed(b.tg.message(ANN, "a lighthouse"))
    assert len(b.tg.sent_photos(ANN.id)) == 1
    assert await _statuses(b) == [GenerationStatus.DELIVERED]
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 1
    assert any("images not kept for buttons and /history (KeyError)" in r.getMessage() for r in caplog.records)
    await b.services.queue.drained()
    assert len(b.tg.sent_photos(ANN.id)) == 1  # never sent again
