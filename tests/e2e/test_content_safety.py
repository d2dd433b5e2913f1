"""Issue 13 end to end: the real bot polling a fake Bot API, the real provider clients (google-genai,
huggingface_hub, httpx) against fake servers that refuse the way each real service does."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.levels import Level
from tests.fakes.providers import COG_FLUX_NSFW, REPLICATE_E005
from tests.harness import FakeUser, Harness, photo_bytes

pytestmark = pytest.mark.e2e

ANN = FakeUser(id=1301, first_name="Ann", username="ann")
IVAN = FakeUser(id=1302, first_name="Иван", username="ivan", language_code="ru-RU")
ROOT = FakeUser(id=1399, first_name="Root", username="root")
DEV = "black-forest-labs/flux-dev"
SCHNELL = "black-forest-labs/flux-schnell"
PRO = "black-forest-labs/flux-1.1-pro"
REFUSAL = "🚫 The image model's content policy refused this request. Nothing was charged"


def generation_requests(h: Harness) -> dict[str, int]:
    """Calls that ask a provider for an image (Hub mapping look-ups are not generations)."""
    return {
        "gemini": len(h.gemini.requests),
        "replicate": len([r for r in h.replicate.requests if r.method == "POST"]),
        "pollinations": len(h.pollinations.requests),
    }


async def _choose(h: Harness, user: FakeUser, model: str) -> None:
    if model == "flux-pro":
        await h.say(user, "/start")
        assert h.app is not None
        await h.app.services.levels.set_level(user.id, Level.SUBSCRIBER)
    if model != "gemini-flash":
        await h.click(user, f"pick:{model}")


@pytest.mark.parametrize(
    ("model", "refuse", "provider", "reason", "asked"),
    [
        (
            "gemini-flash",
            lambda h: h.gemini.behave("blocked", body="PROHIBITED_CONTENT"),
            "gemini",
            "blockReason PROHIBITED_CONTENT",
            {"gemini": 1, "replicate": 0, "pollinations": 0},
        ),
        (
            "gemini-flash",
            lambda h: h.gemini.behave("image_blocked", body="IMAGE_SAFETY"),
            "gemini",
            "finishReason IMAGE_SAFETY",
            {"gemini": 1, "replicate": 0, "pollinations": 0},
        ),
        (
            "flux-dev",
            lambda h: h.replicate.behave("nsfw", key=DEV),
            "hf-replicate",
            COG_FLUX_NSFW,
            {"gemini": 0, "replicate": 1, "pollinations": 0},
        ),
        (
            "flux-pro",
            lambda h: h.replicate.behave("nsfw", key=PRO),
            "hf-replicate",
            REPLICATE_E005,
            {"gemini": 0, "replicate": 1, "pollinations": 0},
        ),
    ],
    ids=["gemini-blocked-prompt", "gemini-blocked-image", "flux-dev-nsfw", "flux-pro-e005"],
)
async def test_each_refusal_shape_ends_the_chain_uncharged(
    tmp_path: Path, clock: ManualClock, model: str, refuse: Any, provider: str, reason: str, asked: dict[str, int]
) -> None:
    async with Harness(tmp_path, clock) as h:
        await _choose(h, ANN, model)
        refuse(h)
        mark = h.tg.mark()
        await h.say(ANN, "something the filter refuses")

        assert h.photos(ANN, since=mark) == []
        text = h.texts(ANN, since=mark)[-1]
        assert text.startswith(REFUSAL) and "every image service failed" not in text
        assert generation_requests(h) == asked  # no other provider was asked
        assert h.replicate.predictions_for(SCHNELL) == []  # not even FLUX Dev's own fallback
        assert await h.used_today(ANN.id) == 0
        [row] = await h.generations()
        assert (row.status, row.provider, row.refusal_reason, row.model_requested) == (
            "refused",
            provider,
            reason,
            model,
        )
        assert row.attempts[-1]["outcome"] == "refused"


async def test_pollinations_refuses_in_safe_mode(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, keys=False) as h:  # only Pollinations: no key needed
        h.pollinations.behave("nsfw")
        await h.say(IVAN, "что-то, что фильтр не пропустит")
        assert h.photos(IVAN) == []
        assert h.texts(IVAN)[-1].startswith("🚫 Политика контента модели отклонила этот запрос. Лимит не списан")
        assert h.pollinations.requests[0].query["safe"] == "true"
        assert await h.used_today(IVAN.id) == 0
        [row] = await h.generations()
        assert (row.status, row.provider) == ("refused", "pollinations")
        assert row.refusal_reason is not None and "NSFW content detected" in row.refusal_reason


async def test_refusal_fallback_restores_the_chain(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, REFUSAL_FALLBACK=1) as h:
        h.gemini.behave("blocked")
        await h.say(ANN, "a lighthouse")
        [photo] = h.photos(ANN)
        assert h.replicate.made_by(photo_bytes(photo), DEV)
        assert "Gemini Flash was unavailable" in photo.result["caption"]
        assert await h.used_today(ANN.id) == 1
        [row] = await h.generations()
        assert row.status == "delivered" and [a["outcome"] for a in row.attempts] == ["refused", "ok"]


async def test_strict_level_reaches_every_provider(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, SAFETY_LEVEL="strict") as h:
        await _choose(h, ANN, "flux-pro")
        h.replicate.behave("status", key=PRO, status=503)
        h.replicate.behave("status", key=DEV, status=503)
        h.gemini.behave("status", status=503)
        await h.say(ANN, "a lighthouse")  # every step is asked once, Pollinations makes it
        assert len(h.photos(ANN)) == 1
        gemini = h.gemini.requests[0].json["safetySettings"]
        assert {s["threshold"] for s in gemini} == {"BLOCK_LOW_AND_ABOVE"} and len(gemini) == 4
        assert h.replicate.predictions_for(PRO)[0].json["input"]["safety_tolerance"] == 1
        assert h.replicate.predictions_for(DEV)[0].json["input"]["disable_safety_checker"] is False
        assert h.pollinations.requests[0].query["safe"] == "true"


async def test_the_word_list_refuses_before_any_provider_call(tmp_path: Path, clock: ManualClock) -> None:
    word_list = tmp_path / "blocked-terms.txt"
    word_list.write_text("# one term or re:regex a line\nbeheading\nre:\\bnsfw\\b\n", encoding="utf-8")
    async with Harness(tmp_path, clock, BLOCKED_TERMS_FILE=word_list) as h:
        await h.say(ANN, "A Beheading in a medieval town")
        await h.say(ANN, "something NSFW please")
        texts = [t for t in h.texts(ANN) if "Generating" not in t]
        assert len(texts) == 2 and all(t.startswith(REFUSAL) for t in texts)
        assert h.gemini.requests == [] and h.hub.requests == [] and h.replicate.requests == []
        assert h.pollinations.requests == [] and h.photos(ANN) == []
        assert await h.used_today(ANN.id) == 0
        assert [(g.status, g.provider) for g in await h.generations()] == [("refused", "word-list")] * 2


async def test_admins_see_refusals_and_get_one_alert_a_day_that_survives_a_restart(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with Harness(tmp_path, clock, ADMIN_IDS=ROOT.id, REFUSAL_ALERT=1) as h:
        await h.say(ROOT, "/start")
        h.gemini.behave("blocked")

        def alerts() -> list[Any]:
            return [c for c in h.tg.sent_messages(ROOT.id) if "prompts refused by content filters today" in c.text]

        await h.say(ANN, "first refused")
        assert alerts() == []
        await h.say(ANN, "second refused")
        [alert] = alerts()
        assert alert.result["text"].startswith("⚠️ \u2068@ann\u2069 (1301) has had 2 prompts refused")
        assert alert.callback_datas == ["ban:1301"]

        await h.restart()  # "once that day" is in the database
        await h.say(ANN, "third refused")
        assert len(alerts()) == 1

        h.gemini.reset()
        await h.say(ANN, "a harmless cat")
        await h.say(ROOT, "/user @ann")
        report = h.texts(ROOT)[-1]
        assert "Refused by content filters: 3 today, 3 in total" in report
        assert "→ gemini [refused: blockReason SAFETY] \u2068third refused\u2069" in report
        await h.say(ROOT, "/stats")
        stats = h.texts(ROOT)[-1]
        assert "Refused by content filters: 3 (gemini: 3)" in stats and "Images delivered: 1" in stats

        await h.click(ROOT, "ban:1301", message_id=alert.result["message_id"])
        assert h.tg.calls_of("answerCallbackQuery")[-1].params["text"] == "\u2068@ann\u2069 (1301) is banned."
        assert (await h.user(ANN.id)).is_banned
        mark = h.tg.mark()
        await h.say(ANN, "anything")
        assert h.texts(ANN, since=mark)[-1] == "You can no longer use this bot."

        clock.advance(timedelta(days=1))
        await h.app.services.bans.set_ban(ANN.id, False)  # type: ignore[union-attr]
        h.gemini.behave("blocked")
        await h.say(ANN, "new day one")
        await h.say(ANN, "new day two")
        assert len(alerts()) == 2
