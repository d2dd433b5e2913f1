"""API jobs in the real worker (stub providers): images go to the result store, not to Telegram; the
daily limit and refunds are the chat's; a job finished after its caller stopped waiting is refunded;
a job resumed by another worker after delivery is not charged twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bot.catalog import ModelId
from bot.levels import Level
from bot.providers.base import ErrorKind, ImageOptions
from bot.services.api_generation import ApiGeneration, CallStatus, ImageCall
from bot.web.openai_errors import too_many
from models import Generation, GenerationStatus
from tests.fakes.telegram import FakeUser

ANN = FakeUser(id=701, first_name="Ann", username="ann")
BotFactory = Callable[..., Any]


def _api(b: Any, timeout: float = 30) -> ApiGeneration:
    s = b.services
    return ApiGeneration(s.jobs, s.queue, s.api_files, s.clock, timeout)


async def _ann(b: Any) -> Any:
    await b.feed(b.tg.message(ANN, "/start"))
    return await b.services.users.get(ANN.id)


async def test_images_go_to_the_store_and_are_charged(make_bot: BotFactory) -> None:
    b = await make_bot()
    user = await _ann(b)
    mark = b.tg.mark()
    outcome = await _api(b).run(user, ImageCall("a fox", ModelId.GEMINI_FLASH, count=2))
    assert outcome.status is CallStatus.DONE and len(outcome.images) == 2
    assert all(image.data and image.mime_type.startswith("image/") for image in outcome.images)
    assert b.tg.calls_of(since=mark) == []  # nothing to Telegram: no photo, no chat action, no status
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 2
    assert await b.services.jobs.status(outcome.generation_id) is GenerationStatus.DELIVERED


async def test_failures_and_refusals_are_refunded(make_bot: BotFactory) -> None:
    b = await make_bot()
    user = await _ann(b)
    for stub in b.stubs.values():
        stub.outcomes = [ErrorKind.BAD_OUTPUT] * 4
    failed = await _api(b).run(user, ImageCall("a fox", ModelId.GEMINI_FLASH))
    assert failed.status is CallStatus.FAILED
    b.stubs["gemini"].outcomes = [ErrorKind.REFUSED]
    refused = await _api(b).run(user, ImageCall("a fox", ModelId.GEMINI_FLASH))
    assert refused.status is CallStatus.REFUSED
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 0


async def test_level_and_limit_are_the_chats(make_bot: BotFactory) -> None:
    b = await make_bot(DAILY_LIMIT_USER="1")
    user = await _ann(b)
    locked = await _api(b).run(user, ImageCall("a fox", ModelId.FLUX_PRO))
    assert locked.status is CallStatus.FORBIDDEN and locked.required_level is Level.SUBSCRIBER
    await b.feed(b.tg.message(ANN, "a fox in the chat"))
    assert len(b.tg.sent_photos(ANN.id)) == 1
    limited = await _api(b).run(user, ImageCall("a fox", ModelId.GEMINI_FLASH))
    assert limited.status is CallStatus.LIMIT_REACHED
    until_midnight = (b.services.clock.next_reset() - b.services.clock.now()).total_seconds()
    assert limited.retry_after == until_midnight


async def test_a_job_done_after_its_caller_gave_up_is_refunded(make_bot: BotFactory, clock: Any) -> None:
    b = await make_bot(API_TIMEOUT="30")
    await _ann(b)
    jobs = b.services.jobs
    submitted = await jobs.submit(
        user_id=ANN.id, chat_id=None, level=Level.USER, prompt="a fox", model=ModelId.GEMINI_FLASH,
        options=ImageOptions(), source="api",
    )  # fmt: skip
    assert submitted.generation_id is not None
    clock.advance(timedelta(seconds=31))  # e.g. resumed after a restart: its request is long gone
    await b.services.queue.enqueue(submitted.generation_id)
    await b.services.queue.drained()
    async with b.services.sessions() as session:
        row = await session.get(Generation, submitted.generation_id)
    assert row is not None and (row.status, row.error_class) == (GenerationStatus.UNDELIVERED, "NobodyWaiting")
    assert await b.services.api_files.results(submitted.generation_id) == []
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 0


async def test_too_many_waiting_is_refused_with_a_short_retry(make_bot: BotFactory) -> None:
    b = await make_bot(INFLIGHT_CAP="user:1", QUEUE_MAX_PER_USER="0")
    user = await _ann(b)
    held = await b.services.jobs.submit(
        user_id=ANN.id, chat_id=None, level=Level.USER, prompt="held", model=ModelId.GEMINI_FLASH, source="api"
    )  # queued, not yet taken: it holds the user's one slot
    assert held.accepted
    busy = await _api(b).run(user, ImageCall("a fox", ModelId.GEMINI_FLASH))
    assert busy.status is CallStatus.TOO_MANY and busy.retry_after == 10
    response = too_many("busy", busy.retry_after, "too_many_requests")
    assert response.status == 429 and response.headers["Retry-After"] == "10"
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 1  # only the held job's unit
