"""/describe end to end: a photo from the fake Bot API, fetched by the bot (getFile + download),
sent by the real huggingface_hub client as an image_url data URI to the fake router's vision model;
the description back in the chat, and "Generate from this" through the fake Gemini."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from bot.clock import ManualClock
from tests.fakes.providers import bomb_png, make_image
from tests.harness import SECRETS, FakeUser, Harness

pytestmark = pytest.mark.e2e

ANN = FakeUser(id=4001, first_name="Ann", username="ann")
IVAN = FakeUser(id=4002, first_name="Иван", username="ivan", language_code="ru")
VISION = "fake-org/vision-7b"
DESCRIPTION = "A white cat <sleeping> on a red sofa & a blue cushion, warm window light."


async def describe(h: Harness, user: FakeUser, data: bytes, *, width: int = 64, height: int = 48) -> int:
    mark = h.tg.mark()
    await h.say(user, "/describe")
    await h.push(h.tg.photo(user, data, width=width, height=height))
    return mark


async def test_the_photo_reaches_the_vision_model_and_the_description_can_be_drawn(
    tmp_path: Path, clock: ManualClock
) -> None:
    photo = make_image((200, 30, 30), (64, 48), fmt="JPEG")
    async with Harness(tmp_path, clock, VISION_MODEL=VISION, DAILY_LIMIT_USER=5) as h:
        h.replicate.chat.reply(VISION, DESCRIPTION)
        mark = await describe(h, ANN, photo)
        [ask] = h.replicate.chat.for_model(VISION)
        assert ask.images() == [photo]  # the very bytes the user sent
        assert ask.body["messages"][0]["content"][1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
        assert any("in English" in text for text in ask.texts())
        assert ask.authorization == f"Bearer {SECRETS[2]}"

        replies = h.tg.calls_of("sendMessage", since=mark, chat_id=ANN.id)
        answer = replies[-1]
        assert DESCRIPTION in answer.result["text"]  # escaped on the way out, shown as sent
        assert "&lt;sleeping&gt;" in answer.params["text"]
        [generation] = await h.generations()
        assert answer.callback_datas == [f"dsc:{generation.id}"]
        assert (generation.kind, generation.status, generation.units) == ("describe", "delivered", 1)
        assert generation.prompt_used == DESCRIPTION and generation.sent_message_id == answer.result["message_id"]
        assert await h.used_today(ANN.id) == 1
        assert h.gemini.requests == []  # describing draws nothing
        assert h.app is not None
        metrics = (await h.app.metrics.render()).decode()
        assert 'model="describe",provider="hf-router",status="delivered"' in metrics

        mark = h.tg.mark()
        await h.click(ANN, f"dsc:{generation.id}", message_id=answer.result["message_id"])
        [drawn] = h.photos(ANN, since=mark)
        assert (
            "A white cat &lt;sleeping&gt;" not in drawn.result["caption"]
            and "A white cat <sleeping>" in (drawn.result["caption"])
        )
        [_, made] = await h.generations()
        assert (made.kind, made.prompt, made.parent_id, made.status) == (
            "generate",
            DESCRIPTION,
            generation.id,
            "delivered",
        )
        assert await h.used_today(ANN.id) == 2

        # Describe mode lasts: a second photo is described too, until /cancel.
        await h.push(h.tg.photo(ANN, make_image((10, 10, 10))))
        assert len(h.replicate.chat.for_model(VISION)) == 2
        await h.say(ANN, "/cancel")
        await h.push(h.tg.photo(ANN, make_image((10, 10, 10))))
        assert len(h.replicate.chat.for_model(VISION)) == 2


async def test_a_russian_user_gets_a_russian_description_request(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, VISION_MODEL=VISION) as h:
        h.replicate.chat.reply(VISION, "Белая кошка спит на красном диване.")
        await describe(h, IVAN, make_image((1, 2, 3)))
        [ask] = h.replicate.chat.for_model(VISION)
        assert any("in Russian" in text for text in ask.texts())
        assert "Белая кошка" in h.texts(IVAN)[-1] and "Что я вижу" in h.texts(IVAN)[-1]


@pytest.mark.parametrize(
    ("status", "english", "russian"),
    [
        (401, "refused the bot's key", "отклонил ключ бота"),
        (403, "not open to this bot", "недоступна этому боту"),
        (404, "was not found", "не найдена"),
        (429, "busy right now", "сейчас занята"),
        (503, "still starting up", "ещё запускается"),
    ],
)
async def test_each_router_error_has_its_message_and_the_unit_comes_back(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture, status: int, english: str, russian: str
) -> None:
    async with Harness(tmp_path, clock, VISION_MODEL=VISION) as h:
        h.replicate.chat.fail(status, model=VISION)
        with caplog.at_level(logging.WARNING):
            mark = await describe(h, ANN, make_image((5, 5, 5)))
        said = h.texts(ANN, since=mark)[-1]
        assert english in said and "Nothing was charged" in said
        assert "fake" not in said.lower() and str(status) not in said  # the router's words stay in the log
        [generation] = await h.generations()
        assert (generation.status, generation.error_class, generation.units) == (
            "failed",
            f"router_{status_name(status)}",
            1,
        )
        assert await h.used_today(ANN.id) == 0
        assert not any(secret in caplog.text for secret in SECRETS)

        await describe(h, IVAN, make_image((5, 5, 5)))
        assert russian in h.texts(IVAN)[-1]
        assert await h.used_today(IVAN.id) == 0


def status_name(status: int) -> str:
    return {401: "key", 403: "gated", 404: "model", 429: "busy", 503: "loading"}[status]


async def test_describe_free_reserves_nothing(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, VISION_MODEL=VISION, DESCRIBE_FREE=1, DAILY_LIMIT_USER=1) as h:
        await h.say(ANN, "a fox")  # the day's only unit
        assert await h.used_today(ANN.id) == 1
        await describe(h, ANN, make_image((9, 9, 9)))
        assert "Fake answer from" in h.texts(ANN)[-1]
        rows = await h.generations()
        assert (rows[-1].kind, rows[-1].status, rows[-1].units, rows[-1].quota_day) == (
            "describe",
            "delivered",
            0,
            None,
        )
        assert await h.used_today(ANN.id) == 1


async def test_describe_counts_against_the_limit_by_default(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, VISION_MODEL=VISION, DAILY_LIMIT_USER=1) as h:
        await h.say(ANN, "a fox")
        await describe(h, ANN, make_image((9, 9, 9)))
        assert "You have used all 1 images for today" in h.texts(ANN)[-1]
        assert h.replicate.chat.requests == []


async def test_a_pixel_bomb_is_refused_from_its_header_before_the_model_sees_it(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with Harness(tmp_path, clock, VISION_MODEL=VISION) as h:
        # Telegram's PhotoSize says 64×64; the bytes are a 12000×12000 PNG.
        await describe(h, ANN, bomb_png(12000, 12000), width=64, height=64)
        assert "too large" in h.texts(ANN)[-1]
        assert h.replicate.chat.requests == []
        [generation] = await h.generations()
        assert (generation.status, generation.error_class) == ("failed", "photo_too_large")
        assert await h.used_today(ANN.id) == 0


async def test_a_photo_reported_over_the_caps_is_not_even_queued(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, VISION_MODEL=VISION, PROVIDER_MAX_BYTES=2048) as h:
        big = os.urandom(4096)  # every PhotoSize reports these 4 KB: over a 2 KB cap
        mark = await describe(h, ANN, big, width=400, height=400)
        assert "too large" in h.texts(ANN, since=mark)[-1]
        assert await h.generations() == [] and not h.tg.calls_of("getFile")


async def test_without_an_hf_token_describe_says_it_is_unavailable(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, keys=False) as h:
        await h.say(ANN, "/describe")
        assert "not available" in h.texts(ANN)[-1]
        await h.push(h.tg.photo(ANN, make_image((1, 1, 1))))
        assert await h.generations() == []


async def test_stats_count_images_not_descriptions(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, VISION_MODEL=VISION) as h:
        await describe(h, ANN, make_image((3, 3, 3)))
        await h.say(ANN, "a fox")
        assert [(g.kind, g.status) for g in await h.generations()] == [
            ("describe", "delivered"),
            ("generate", "delivered"),
        ]
        assert h.app is not None
        stats = await h.app.services.reports.stats()
        assert (stats.delivered, stats.by_model) == (1, {"gemini-flash": 1})
