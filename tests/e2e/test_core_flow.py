"""Issue 3 end to end: the real bot, polling a fake Bot API, generating through fake providers
with the real google-genai / huggingface_hub / httpx clients."""

from __future__ import annotations

import html
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.levels import Level
from tests.fakes.providers import color_close
from tests.harness import SECRETS, FakeUser, Harness, photo_bytes, photo_color

pytestmark = pytest.mark.e2e

ANN = FakeUser(id=1001, first_name="Ann", username="ann")
IVAN = FakeUser(id=1002, first_name="Иван", username="ivan", language_code="ru-RU")
DEV = "black-forest-labs/flux-dev"
SCHNELL = "black-forest-labs/flux-schnell"
PRO = "black-forest-labs/flux-1.1-pro"


async def test_start_registers_and_shows_the_menu(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        assert h.tg.calls_of("deleteWebhook") and h.tg.calls_of("setMyCommands")
        await h.say(ANN, "/start")
        reply = h.tg.sent_messages(ANN.id)[-1]
        assert "Hi, Ann" in reply.result["text"]
        keyboard = [b["text"] for row in reply.params["reply_markup"]["keyboard"] for b in row]
        assert keyboard == ["🎨 Generate", "👤 Profile", "⚙️ Settings", "❓ Help"]
        user = await h.user(ANN.id)
        assert (user.username, user.first_name, user.language_code, user.level) == ("ann", "Ann", "en", Level.USER)

        await h.say(ANN, "❓ Help")
        assert "FLUX Pro" in h.texts(ANN)[-1] and "Subscriber" in h.texts(ANN)[-1]


async def test_russian_user_gets_russian(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        await h.say(IVAN, "/start")
        assert "Привет, Иван" in h.texts(IVAN)[-1]
        await h.say(IVAN, "👤 Профиль")
        assert "Уровень: Пользователь" in h.texts(IVAN)[-1]


async def test_picker_prompt_photo_with_status_action_and_caption(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        await h.say(ANN, "/generate")
        picker = h.tg.sent_messages(ANN.id)[-1]
        assert picker.callback_datas == ["pick:gemini-flash", "pick:flux-dev", "pick:flux-pro"]
        labels = [b["text"] for b in picker.buttons]
        assert labels[0].startswith("✅") and labels[2] == "🔒 FLUX Pro"

        await h.click(ANN, "pick:flux-dev", message_id=picker.result["message_id"])
        answer = h.tg.calls_of("answerCallbackQuery")[-1]
        assert "FLUX Dev" in answer.params["text"]
        edited = h.tg.message_state(ANN.id, picker.result["message_id"])
        assert edited is not None and "Now send me a description" in edited["text"]
        assert (await h.user(ANN.id)).chosen_model == "flux-dev"

        mark = h.tg.mark()
        await h.say(ANN, "a red fox in the snow")
        [photo] = h.photos(ANN, since=mark)
        assert h.replicate.made_by(photo_bytes(photo), DEV)
        caption = photo.result["caption"]
        assert "FLUX Dev" in caption and "a red fox in the snow" in caption and "4 of 5" in caption
        assert "unavailable" not in caption

        actions = h.tg.calls_of("sendChatAction", since=mark, chat_id=ANN.id)
        assert actions and all(a.params["action"] == "upload_photo" for a in actions)
        [status] = [
            c for c in h.tg.calls_of("sendMessage", since=mark, chat_id=ANN.id) if "Generating" in c.params["text"]
        ]
        assert "FLUX Dev" in status.params["text"]
        assert h.tg.calls_of("deleteMessage", since=mark, message_id=status.result["message_id"])
        assert status.time < photo.time

        [record] = await h.generations()
        assert (record.status, record.model_requested, record.provider, record.model_used) == (
            "delivered", "flux-dev", "hf-replicate", "black-forest-labs/FLUX.1-dev",
        )  # fmt: skip
        assert record.prompt == "a red fox in the snow" and record.latency_ms is not None


async def test_locked_and_forged_picks_are_refused(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        await h.say(ANN, "/generate")
        picker = h.tg.sent_messages(ANN.id)[-1]
        await h.click(ANN, "pick:flux-pro", message_id=picker.result["message_id"])
        refusal = h.tg.calls_of("answerCallbackQuery")[-1]
        assert refusal.params["show_alert"] is True and "Subscriber" in refusal.params["text"]
        assert (await h.user(ANN.id)).chosen_model == "gemini-flash"

        # A forged callback, never offered to this user, on a message that is not a picker.
        await h.click(ANN, "pick:flux-pro")
        assert "Subscriber" in h.tg.calls_of("answerCallbackQuery")[-1].params["text"]
        await h.click(ANN, "pick:midjourney")
        assert "does not exist" in h.tg.calls_of("answerCallbackQuery")[-1].params["text"]
        await h.click(ANN, "garbage-data")
        assert "outdated" in h.tg.calls_of("answerCallbackQuery")[-1].params["text"]
        assert (await h.user(ANN.id)).chosen_model == "gemini-flash"
        assert h.replicate.predictions_for(PRO) == []


async def test_stale_choice_above_the_level_is_refused_at_generation(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        assert h.app is not None
        await h.app.services.levels.set_level(ANN.id, Level.SUBSCRIBER, days=1)
        await h.click(ANN, "pick:flux-pro")
        assert (await h.user(ANN.id)).chosen_model == "flux-pro"
        clock.advance(timedelta(days=1, minutes=1))  # the subscription ran out
        mark = h.tg.mark()
        await h.say(ANN, "a castle")
        assert h.photos(ANN, since=mark) == []
        assert "FLUX Pro is available from the Subscriber level" in h.texts(ANN, since=mark)[-1]
        assert h.replicate.predictions_for(PRO) == [] and await h.used_today(ANN.id) == 0


async def test_daily_limit_stops_after_n_and_resets_next_day(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, DAILY_LIMIT_USER=2) as h:
        for prompt in ("one", "two"):
            await h.say(ANN, prompt)
        assert len(h.photos(ANN)) == 2
        assert "0 of 2" in h.photos(ANN)[-1].result["caption"]
        calls_before = len(h.gemini.requests)
        mark = h.tg.mark()
        await h.say(ANN, "three")
        assert h.photos(ANN, since=mark) == []
        assert "You have used all 2 images for today" in h.texts(ANN, since=mark)[-1]
        assert "00:00 UTC (in 12 h 0 min)" in h.texts(ANN, since=mark)[-1]
        assert not any("Generating" in t for t in h.texts(ANN, since=mark))  # no progress without a unit
        # The prompt is acknowledged on arrival ("sending a photo…"); the refusal that follows ends it.
        ann_calls = [c.method for c in h.tg.calls[mark:] if c.chat_id == ANN.id]
        assert ann_calls == ["sendChatAction", "sendMessage"]
        assert len(h.gemini.requests) == calls_before  # no provider was asked

        await h.restart()  # state is in the database, not in memory
        mark = h.tg.mark()
        await h.say(ANN, "still today")
        assert h.photos(ANN, since=mark) == []

        clock.advance(timedelta(hours=12))
        await h.say(ANN, "tomorrow")
        assert len(h.photos(ANN, since=mark)) == 1
        assert "1 of 2" in h.photos(ANN)[-1].result["caption"]


@pytest.mark.parametrize(
    "behave",
    [
        {"mode": "delay", "seconds": 6},
        {
            "mode": "status",
            "status": 400,
            "body": {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}},
        },
        {"mode": "status", "status": 429},
        {"mode": "status", "status": 500},
        {"mode": "garbage"},
    ],
    ids=["timeout", "4xx", "429", "5xx", "non-image"],
)
async def test_gemini_failing_falls_through_to_flux_dev(tmp_path: Path, clock: ManualClock, behave: dict) -> None:
    async with Harness(tmp_path, clock) as h:
        h.gemini.behave(**behave)
        await h.say(ANN, "a lighthouse")
        [photo] = h.photos(ANN)
        assert h.replicate.made_by(photo_bytes(photo), DEV)
        caption = photo.result["caption"]
        assert "FLUX Dev" in caption and "Gemini Flash was unavailable" in caption
        assert await h.used_today(ANN.id) == 1
        [record] = await h.generations()
        assert record.attempts[0]["provider"] == "gemini" and record.attempts[0]["outcome"] != "ok"
        assert record.fallback is True


@pytest.mark.parametrize(
    "behave",
    [
        {"mode": "delay", "seconds": 8},
        {"mode": "status", "status": 422},
        {"mode": "status", "status": 502},
        {"mode": "garbage"},
    ],
    ids=["timeout", "4xx", "5xx", "non-image"],
)
async def test_gemini_and_hf_failing_fall_through_to_pollinations(
    tmp_path: Path, clock: ManualClock, behave: dict
) -> None:
    async with Harness(tmp_path, clock) as h:
        h.gemini.behave("status", status=503)
        h.replicate.behave(**behave)
        await h.say(ANN, "a lighthouse")
        [photo] = h.photos(ANN)
        assert color_close(photo_color(photo), h.pollinations.color)
        assert "Pollinations" in photo.result["caption"]
        assert [a["provider"] for a in (await h.generations())[0].attempts] == [
            "gemini", "hf-replicate", "pollinations",
        ]  # fmt: skip


async def test_user_choosing_flux_dev_falls_back_to_gemini_first(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        await h.click(ANN, "pick:flux-dev")
        h.replicate.behave("status", status=500)
        await h.say(ANN, "a lighthouse")
        assert h.gemini.made(photo_bytes(h.photos(ANN)[-1]))
        assert h.replicate.predictions_for(PRO) == []  # never a fallback for a user


async def test_everything_failing_gives_a_message_and_costs_nothing(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with Harness(tmp_path, clock) as h:
        h.gemini.behave("status", status=500, body={"error": {"code": 500, "message": f"boom {SECRETS[1]}"}})
        h.replicate.behave("status", status=500)
        h.pollinations.behave("garbage")
        with caplog.at_level(logging.DEBUG):
            await h.say(ANN, "a lighthouse")
        assert h.photos(ANN) == []
        text = h.texts(ANN)[-1]
        assert "every image service failed" in text and "not charged" in text
        assert await h.used_today(ANN.id) == 0
        [record] = await h.generations()
        assert record.status == "failed" and record.error_class == "bad_output"
        failures = [r.getMessage() for r in caplog.records if "provider failed" in r.getMessage()]
        assert len(failures) == 3 and any("status=500" in f for f in failures)
        logged = "\n".join(r.getMessage() for r in caplog.records)
        for secret in SECRETS:
            assert secret not in logged
        for call in h.tg.calls:
            for secret in SECRETS[1:]:
                assert secret not in str(call.params)


async def test_flux_dev_without_access_is_served_by_schnell(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        await h.click(ANN, "pick:flux-dev")
        h.replicate.behave("status", key=DEV, status=403, body={"detail": "You do not have access to this model"})
        await h.say(ANN, "a lighthouse")
        [photo] = h.photos(ANN)
        assert h.replicate.made_by(photo_bytes(photo), SCHNELL)
        assert "FLUX.1-schnell" in photo.result["caption"] and "unavailable" not in photo.result["caption"]
        schnell = h.replicate.predictions_for(SCHNELL)[0].json["input"]
        assert schnell["num_inference_steps"] == 4 and "guidance_scale" not in schnell


async def test_subscriber_gets_flux_pro_via_replicate(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        assert h.app is not None
        await h.app.services.levels.set_level(ANN.id, Level.SUBSCRIBER)
        await h.click(ANN, "pick:flux-pro")
        await h.say(ANN, "a lighthouse")
        assert h.replicate.made_by(photo_bytes(h.photos(ANN)[-1]), PRO)
        [request] = h.replicate.predictions_for(PRO)
        assert request.header("authorization") == f"Bearer {SECRETS[3]}"


async def test_only_bot_token_still_generates_through_pollinations(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, keys=False) as h:
        await h.say(ANN, "a lighthouse")
        [photo] = h.photos(ANN)
        assert color_close(photo_color(photo), h.pollinations.color)
        assert h.gemini.requests == [] and h.replicate.requests == []


async def test_twenty_concurrent_prompts_at_limit_five_give_exactly_five_images(
    tmp_path: Path, clock: ManualClock
) -> None:
    # No in-flight cap here: this is about the limit holding under twenty reservations at once.
    async with Harness(tmp_path, clock, handle_as_tasks=True, DAILY_LIMIT_USER=5, INFLIGHT_CAP="user:0") as h:
        await h.say(ANN, "/start")
        await h.tg.wait_for("sendMessage", chat_id=ANN.id)
        h.gemini.behave("delay", seconds=0.5)  # keep them in flight together
        for i in range(20):
            h.tg.push(h.tg.message(ANN, f"prompt {i}"))
        await h.tg.wait_for("sendPhoto", count=5, timeout=30, chat_id=ANN.id)
        await h.tg.wait_for(
            "sendMessage", lambda c: "used all 5" in c.params["text"], count=15, timeout=30, chat_id=ANN.id
        )
        await h.stop_bot()  # drains in-flight handlers
        assert len(h.photos(ANN)) == 5
        assert len(h.gemini.requests) == 5
        assert sum(1 for t in h.texts(ANN) if "used all 5" in t) == 15
        h.app = None
        await h.start_bot()
        assert await h.used_today(ANN.id) == 5


@pytest.mark.parametrize(
    "prompt",
    ["<b>bold</b> & <script>alert(1)</script>", "Tom & Jerry <3", "x&y " * 500, "ä" * 2000, "🦊" * 1500],
    ids=["tags", "ampersand", "2000-chars-amp", "2000-chars", "emoji"],
)
async def test_awkward_prompts_still_get_a_valid_caption(tmp_path: Path, clock: ManualClock, prompt: str) -> None:
    async with Harness(tmp_path, clock) as h:
        await h.say(ANN, prompt)
        [photo] = h.photos(ANN)  # the fake Bot API rejects invalid HTML and captions over 1024
        caption = photo.result["caption"]
        assert caption.startswith("✨ Gemini Flash") and "left today" in caption
        assert prompt[:20] in caption
        assert html.escape(prompt[:5]) in photo.params["caption"] or "&" not in prompt[:5]
        assert not h.tg.calls_of("sendPhoto", ok=False)


async def test_non_text_and_unknown_commands_get_hints(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        await h.push(h.tg.sticker(ANN))
        assert "text descriptions only" in h.texts(ANN)[-1]
        await h.push(h.tg.voice(ANN))
        assert "text descriptions only" in h.texts(ANN)[-1]
        await h.say(ANN, "/frobnicate")
        assert "don't know that command" in h.texts(ANN)[-1]
        await h.say(ANN, "/cancel")
        assert "Nothing to cancel" in h.texts(ANN)[-1]
        await h.say(ANN, "/generate")
        await h.click(ANN, "pick:gemini-flash")
        await h.say(ANN, "/cancel")
        assert h.texts(ANN)[-1] == "Cancelled."
        assert h.photos(ANN) == [] and await h.generations() == []


async def test_profile_shows_level_usage_reset_and_model(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, DAILY_LIMIT_USER=3) as h:
        await h.say(ANN, "a cat")
        await h.click(ANN, "pick:flux-dev")
        await h.say(ANN, "/profile")
        text = h.texts(ANN)[-1]
        assert "Level: User" in text and "Used today: 1 of 3" in text
        assert "Limit resets at 00:00 UTC (in 12 h 0 min)" in text and "Model: FLUX Dev" in text


async def test_telegram_refusing_the_photo_does_not_charge(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        h.tg.fail("sendPhoto", status=400, description="Bad Request: PHOTO_INVALID_DIMENSIONS")
        h.tg.fail("sendDocument", status=400, description="Bad Request: wrong file")  # a 5xx would be retried
        await h.say(ANN, "a cat")
        assert h.photos(ANN) == []
        assert "Telegram would not take it" in h.texts(ANN)[-1] and "not charged" in h.texts(ANN)[-1]
        assert await h.used_today(ANN.id) == 0
        assert (await h.generations())[0].status == "undelivered"


async def test_a_failing_provider_rests_so_users_do_not_wait_for_it(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, DAILY_LIMIT_USER=10) as h:
        h.gemini.behave("status", status=503)
        for i in range(4):
            await h.say(ANN, f"prompt {i}")
        assert len(h.photos(ANN)) == 4
        assert len(h.gemini.requests) == 3  # the fourth prompt skipped the resting Gemini
        h.gemini.reset()
        clock.advance(timedelta(seconds=31))
        await h.say(ANN, "after the pause")
        assert len(h.gemini.requests) == 1 and h.gemini.made(photo_bytes(h.photos(ANN)[-1]))
