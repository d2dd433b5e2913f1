"""Prompt help end to end: the real bot, the real huggingface_hub chat client against the fake HF
router's chat endpoint, and the real google-genai client against the fake Gemini."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from bot.clock import ManualClock
from tests.harness import SECRETS, FakeUser, Harness

pytestmark = pytest.mark.e2e

IVAN = FakeUser(id=3001, first_name="Иван", username="ivan", language_code="ru")
ANN = FakeUser(id=3002, first_name="Ann", username="ann")
PROMPT_MODEL = "fake-org/prompt-writer"
RUSSIAN = "рыжая лиса в снегу"
TRANSLATED = "A red fox standing in fresh snow at dawn, soft golden light, detailed fur, photorealistic"


def gemini_prompts(h: Harness) -> list[str]:
    """The text each generateContent call carried (google-genai's request body)."""
    out = []
    for request in h.gemini.requests:
        if request.method == "POST" and request.json:
            out.append(" ".join(part.get("text", "") for c in request.json["contents"] for part in c["parts"]))
    return out


async def switch_on(h: Harness, user: FakeUser) -> None:
    await h.say(user, "/prompthelp")
    panel = h.tg.sent_messages(user.id)[-1]
    assert panel.callback_datas == ["ph:1:1"]  # off now; the button turns it on
    await h.click(user, "ph:1:1", message_id=panel.result["message_id"])
    redrawn = h.tg.message_state(user.id, panel.result["message_id"])
    assert redrawn is not None and redrawn["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "ph:0:1"


async def test_a_russian_prompt_is_translated_and_the_original_is_one_tap_away(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with Harness(tmp_path, clock, PROMPT_MODEL=PROMPT_MODEL) as h:
        h.replicate.chat.reply(PROMPT_MODEL, f'"{TRANSLATED}"')
        await switch_on(h, IVAN)

        mark = h.tg.mark()
        await h.say(IVAN, RUSSIAN)
        [ask] = h.replicate.chat.for_model(PROMPT_MODEL)
        assert ask.authorization == f"Bearer {SECRETS[2]}"  # HF_TOKEN, to the router
        assert RUSSIAN in ask.texts() and ask.messages[0]["role"] == "system"
        assert gemini_prompts(h) == [TRANSLATED]  # the image model got the translation, quotes stripped
        [photo] = h.photos(IVAN, since=mark)
        caption = photo.result["caption"]
        assert TRANSLATED in caption and "Помощник переписал" in caption and RUSSIAN not in caption
        [generation] = await h.generations()
        assert (generation.prompt, generation.prompt_used) == (RUSSIAN, TRANSLATED)
        assert photo.callback_datas[-1] == f"res:op:{generation.id}"  # after the result buttons

        # "Use my own words": a new job with the original prompt, prompt help off for it.
        mark = h.tg.mark()
        await h.click(IVAN, f"res:op:{generation.id}", message_id=photo.result["message_id"])
        assert len(h.replicate.chat.for_model(PROMPT_MODEL)) == 1  # not asked again
        assert gemini_prompts(h)[-1] == RUSSIAN
        [again] = h.photos(IVAN, since=mark)
        assert RUSSIAN in again.result["caption"] and "Помощник" not in again.result["caption"]
        assert not any(data.startswith("res:op:") for data in again.callback_datas)
        rows = await h.generations()
        assert (rows[-1].prompt, rows[-1].prompt_used, rows[-1].parent_id) == (RUSSIAN, RUSSIAN, generation.id)
        assert await h.used_today(IVAN.id) == 2


@pytest.mark.parametrize("status", [401, 429, 500, 503])
async def test_a_failing_chat_model_falls_back_to_the_original_prompt_silently(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    async with Harness(tmp_path, clock, PROMPT_MODEL=PROMPT_MODEL) as h:
        await switch_on(h, IVAN)
        h.replicate.chat.fail(status, model=PROMPT_MODEL)
        mark = h.tg.mark()
        with caplog.at_level(logging.WARNING, logger="bot.assist"):
            await h.say(IVAN, RUSSIAN)
        assert h.replicate.chat.for_model(PROMPT_MODEL)  # it was asked
        assert gemini_prompts(h) == [RUSSIAN]
        [photo] = h.photos(IVAN, since=mark)
        assert RUSSIAN in photo.result["caption"] and "Помощник" not in photo.result["caption"]
        # Nothing but the status line and the photo: the user is not told about the failure.
        texts = [c.params["text"] for c in h.tg.calls_of("sendMessage", since=mark, chat_id=IVAN.id)]
        assert len(texts) == 1 and texts[0].startswith("🎨")
        logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot.assist"))
        assert "prompt help failed, using the original prompt" in logged and str(status) in logged
        assert not any(secret in logged for secret in SECRETS)
        [generation] = await h.generations()
        assert generation.prompt_used == RUSSIAN and generation.status == "delivered"


async def test_a_slow_chat_model_is_cut_off_at_prompt_timeout(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, PROMPT_MODEL=PROMPT_MODEL, PROMPT_TIMEOUT=0.5) as h:
        await switch_on(h, IVAN)
        h.replicate.chat.delay(5)
        mark = h.tg.mark()
        await h.say(IVAN, RUSSIAN)
        assert gemini_prompts(h) == [RUSSIAN]
        assert len(h.photos(IVAN, since=mark)) == 1


async def test_without_the_switch_no_chat_model_is_asked(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, PROMPT_MODEL=PROMPT_MODEL) as h:
        await h.say(ANN, "fox")
        assert h.replicate.chat.requests == [] and gemini_prompts(h) == ["fox"]
        # A long English prompt needs no help even with the switch on.
        await switch_on(h, ANN)
        long_prompt = "a red fox standing in the snow under a pale winter sky at dawn"
        await h.say(ANN, long_prompt)
        assert h.replicate.chat.requests == [] and gemini_prompts(h)[-1] == long_prompt
        # A short one is enriched.
        h.replicate.chat.reply(PROMPT_MODEL, "A small red fox curled up asleep in deep snow, soft morning light")
        await h.say(ANN, "sleepy fox")
        assert json.dumps(h.replicate.chat.requests[-1].messages).count("sleepy fox") == 1
        assert gemini_prompts(h)[-1].startswith("A small red fox curled up")


async def test_a_restart_mid_job_reuses_the_stored_rewrite(tmp_path: Path, clock: ManualClock) -> None:
    """The rewrite is on the row before the image model is called: the resumed job does not ask again."""
    async with Harness(tmp_path, clock, PROMPT_MODEL=PROMPT_MODEL, SHUTDOWN_GRACE=0, GEMINI_TIMEOUT=30) as h:
        h.replicate.chat.reply(PROMPT_MODEL, TRANSLATED)
        await switch_on(h, IVAN)
        h.gemini.behave("delay", seconds=60)
        await h.tg.send_text(IVAN, RUSSIAN)
        for _ in range(300):  # the worker has asked the image model: prompt help is behind it
            if h.gemini.requests:
                break
            await asyncio.sleep(0.05)
        assert h.gemini.requests
        h.gemini.behave("ok")
        await h.restart()  # no grace: the running job is handed back and resumed at start-up
        await h.settle()
        [photo] = h.photos(IVAN)
        assert TRANSLATED in photo.result["caption"]
        assert len(h.replicate.chat.for_model(PROMPT_MODEL)) == 1
        assert gemini_prompts(h) == [TRANSLATED, TRANSLATED]
        [generation] = await h.generations()
        assert (generation.status, generation.job_attempts) == ("delivered", 1)
        assert await h.used_today(IVAN.id) == 1
