"""The worker's prompt step: prompt help stored on the row before the provider call, so a job taken
again (restart, lost lease) reuses it; the word list and the user's switch are respected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.assist.chat import RouterChat
from bot.assist.prompt_help import PromptHelper
from bot.catalog import ModelId
from bot.clock import ManualClock
from bot.db import SessionFactory
from bot.levels import Level
from bot.prompt_step import PromptStep
from bot.safety import BlockedTerms
from bot.services.jobs import GenerationJobs, JobView
from bot.services.prompts import PromptRecords
from bot.services.quota import QuotaService
from bot.services.users import Profile, UserService
from tests.conftest import make_settings
from tests.fakes.providers import FakeReplicate

MODEL = "fake-org/prompt-writer"
LEASE = timedelta(seconds=60)


@pytest.fixture
async def router() -> AsyncIterator[FakeReplicate]:
    async with FakeReplicate() as fake:
        fake.chat.reply(MODEL, "A red fox in deep snow")
        yield fake


async def _setup(sessions: SessionFactory, clock: ManualClock) -> tuple[GenerationJobs, PromptRecords]:
    settings = make_settings("sqlite+aiosqlite://", INFLIGHT_CAP="user:0")  # two jobs running at once
    await UserService(sessions, clock, frozenset()).register(Profile(id=7, first_name="U7"))
    jobs = GenerationJobs(sessions, QuotaService(sessions, settings, clock), clock, settings)
    return jobs, PromptRecords(sessions)


async def _stored(jobs: GenerationJobs, generation_id: int) -> str | None:
    job = await jobs.find(generation_id)
    assert job is not None
    return job.prompt_used


async def _claimed(jobs: GenerationJobs, prompt: str, owner: str = "w1") -> JobView:
    submitted = await jobs.submit(user_id=7, chat_id=7, level=Level.USER, prompt=prompt, model=ModelId.GEMINI_FLASH)
    assert submitted.generation_id is not None
    job = await jobs.claim(owner, LEASE, preferred=submitted.generation_id)
    assert isinstance(job, JobView)
    return job


async def test_a_job_taken_again_reuses_the_stored_rewrite(
    sessions: SessionFactory, clock: ManualClock, router: FakeReplicate
) -> None:
    jobs, records = await _setup(sessions, clock)
    await records.set_enabled(7, True)
    step = PromptStep(records, PromptHelper(RouterChat("hf_x", router.url), MODEL, 5))
    job = await _claimed(jobs, "рыжая лиса")
    assert await step.prompt_for(job, "w1") == "A red fox in deep snow"
    assert (await _stored(jobs, job.id)) == "A red fox in deep snow"
    # The worker dies; the job is put back and another worker takes it: the model is not asked again.
    assert await jobs.put_back(job.id, "w1")
    again = await jobs.claim("w2", LEASE, preferred=job.id)
    assert isinstance(again, JobView) and again.id == job.id
    router.chat.reply(MODEL, "something else entirely")
    assert await step.prompt_for(again, "w2") == "A red fox in deep snow"
    assert len(router.chat.requests) == 1


async def test_switch_off_word_list_and_a_stale_worker(
    sessions: SessionFactory, clock: ManualClock, router: FakeReplicate
) -> None:
    jobs, records = await _setup(sessions, clock)
    helper = PromptHelper(RouterChat("hf_x", router.url), MODEL, 5)
    step = PromptStep(records, helper, BlockedTerms.parse(["лиса"]))
    job = await _claimed(jobs, "рыжая лиса")
    assert await step.prompt_for(job, "w1") == "рыжая лиса"  # switch off
    await records.set_enabled(7, True)
    assert await step.prompt_for(job, "w1") == "рыжая лиса"  # a listed term is never translated away
    assert router.chat.requests == []

    other = await _claimed(jobs, "кот")
    assert await PromptStep(records, helper).prompt_for(other, "someone-else") == "A red fox in deep snow"
    assert await _stored(jobs, other.id) is None  # only the lease holder writes the row
