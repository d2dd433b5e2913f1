"""The HF router chat client: the real huggingface_hub AsyncInferenceClient against the fake router."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.assist.chat import RouterChat
from bot.assist.errors import (
    BadAnswer,
    KeyRejected,
    ModelGated,
    ModelLoading,
    ModelNotFound,
    NotConfigured,
    RouterBusy,
    RouterError,
    RouterProblem,
    RouterTimeout,
    RouterUnavailable,
)
from bot.assist.prompt_help import clean_answer, needs_help
from bot.assist.vision import VisionDescriber
from tests.fakes.providers import FakeReplicate, make_image

TOKEN = "hf_router_secret_0042"
MODEL = "fake-org/chat-1b"
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def router() -> AsyncIterator[FakeReplicate]:
    async with FakeReplicate() as fake:
        yield fake


async def test_answers_come_back_and_the_request_is_openai_shaped(router: FakeReplicate) -> None:
    router.chat.reply(MODEL, "  hi there \n")
    chat = RouterChat(TOKEN, router.url)
    assert await chat.complete(MODEL, HELLO, budget=5, max_tokens=7, temperature=0.2) == "hi there"
    [request] = router.chat.requests
    assert request.authorization == f"Bearer {TOKEN}"
    assert request.body["model"] == MODEL and request.body["messages"] == HELLO
    assert request.body["max_tokens"] == 7 and request.body["temperature"] == 0.2
    assert router.requests[0].path == "/v1/chat/completions"


@pytest.mark.parametrize(
    ("status", "error", "problem"),
    [
        (401, KeyRejected, RouterProblem.KEY),
        (403, ModelGated, RouterProblem.GATED),
        (404, ModelNotFound, RouterProblem.MODEL),
        (429, RouterBusy, RouterProblem.BUSY),
        (402, RouterBusy, RouterProblem.BUSY),
        (503, ModelLoading, RouterProblem.LOADING),
        (500, RouterUnavailable, RouterProblem.UNAVAILABLE),
        (422, BadAnswer, RouterProblem.BAD_ANSWER),
    ],
)
async def test_each_status_is_one_word_of_the_vocabulary(
    router: FakeReplicate, status: int, error: type[RouterError], problem: RouterProblem
) -> None:
    router.chat.fail(status, body={"error": f"upstream said no to {TOKEN}"})
    chat = RouterChat(TOKEN, router.url, retry_delay=0.01)
    with pytest.raises(error) as caught:
        await chat.complete(MODEL, HELLO, budget=5, max_tokens=5)
    assert caught.value.problem is problem and caught.value.status == status
    assert TOKEN not in str(caught.value)  # the key never reaches a log line through the detail
    # Loading models and server faults get one more try (seed 003); the rest are final at once.
    assert len(router.chat.requests) == (2 if status in (500, 503) else 1)


async def test_a_model_that_finishes_loading_answers_on_the_retry(router: FakeReplicate) -> None:
    router.chat.fail(503, model=MODEL, times=1)
    chat = RouterChat(TOKEN, router.url, retry_delay=0.01)
    assert await chat.complete(MODEL, HELLO, budget=5, max_tokens=5) == f"Fake answer from {MODEL}."
    assert len(router.chat.requests) == 2


async def test_time_budget_covers_every_try(router: FakeReplicate) -> None:
    router.chat.delay(3)
    chat = RouterChat(TOKEN, router.url)
    with pytest.raises(RouterTimeout):
        await chat.complete(MODEL, HELLO, budget=0.3, max_tokens=5)


async def test_unreachable_router_and_missing_token(closed_port_url: str) -> None:
    with pytest.raises(RouterUnavailable):
        await RouterChat(TOKEN, closed_port_url, retries=0).complete(MODEL, HELLO, budget=3, max_tokens=5)
    with pytest.raises(NotConfigured):
        await RouterChat(None, closed_port_url).complete(MODEL, HELLO, budget=3, max_tokens=5)


async def test_an_empty_answer_is_a_bad_answer(router: FakeReplicate) -> None:
    router.chat.reply(MODEL, "   ")
    with pytest.raises(BadAnswer):
        await RouterChat(TOKEN, router.url).complete(MODEL, HELLO, budget=5, max_tokens=5)


async def test_vision_sends_the_image_as_a_data_uri(router: FakeReplicate) -> None:
    image = make_image((1, 200, 3))
    vision = VisionDescriber(RouterChat(TOKEN, router.url), "fake-org/vlm", 5)
    assert await vision.describe(image, "image/png", "ru") == "Fake answer from fake-org/vlm."
    [request] = router.chat.requests
    assert request.images() == [image] and any("in Russian" in t for t in request.texts())


def test_which_prompts_get_help_and_how_answers_are_cleaned() -> None:
    assert needs_help("рыжая лиса в снегу на закате над рекой")  # not English, however long
    assert needs_help("a fox")  # short
    assert not needs_help("a red fox standing in the snow at dawn")
    assert not needs_help("a café in Paris at night with warm lights and rain")  # one accent is still English
    assert clean_answer('Prompt: "A red fox\n in snow"') == "A red fox in snow"
    assert clean_answer("«A fox»") == "A fox"
