"""Issue 10's options end to end: /settings and flags, through the real bot and the real client
libraries, arriving at each fake provider as that provider's own parameters; albums and their units."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.levels import Level
from tests.harness import FakeUser, Harness

pytestmark = pytest.mark.e2e

ANN = FakeUser(id=1101, first_name="Ann", username="ann")
DEV = "black-forest-labs/flux-dev"
PRO = "black-forest-labs/flux-1.1-pro"


async def _configure(h: Harness, user: FakeUser) -> None:
    """Through the buttons, as a user would: 16:9, seed 42, negative prompt "text, watermark", style photo."""
    await h.say(user, "/settings")
    message_id = h.tg.sent_messages(user.id)[-1].result["message_id"]
    await h.click(user, "set:open:ar", message_id)
    await h.click(user, "set:ar:16x9", message_id)
    await h.click(user, "set:open:style", message_id)
    await h.click(user, "set:style:photo", message_id)
    await h.click(user, "set:seed:type", message_id)
    await h.say(user, "42")
    message_id = h.tg.sent_messages(user.id)[-1].result["message_id"]
    await h.click(user, "set:neg:type", message_id)
    await h.say(user, "text, watermark")
    shown = h.tg.sent_messages(user.id)[-1].result["text"]
    assert "16:9" in shown and "Seed: 42" in shown and "text, watermark" in shown and "Photo" in shown


def _caption(h: Harness, user: FakeUser, since: int) -> str:
    [photo] = h.photos(user, since=since)
    return str(photo.result["caption"])


async def test_settings_reach_each_provider_as_its_own_parameters(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, DAILY_LIMIT_SUBSCRIBER=20) as h:
        await _configure(h, ANN)
        assert h.app is not None
        await h.app.services.levels.set_level(ANN.id, Level.SUBSCRIBER, days=1)

        # Gemini: image_config's aspect ratio; the negative prompt folded into the text; no seed.
        mark = h.tg.mark()
        await h.say(ANN, "a lighthouse")
        [call] = h.gemini.requests
        assert call.json["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}
        assert "seed" not in call.json["generationConfig"]
        text = call.json["contents"][0]["parts"][0]["text"]
        assert text.startswith("a lighthouse. photorealistic") and text.endswith("Avoid: text, watermark")
        caption = _caption(h, ANN, mark)
        assert "Gemini Flash ignores: seed" in caption and "Seed" not in caption.replace("ignores: seed", "")

        # FLUX Dev through huggingface_hub and the router: width/height in 16s, aspect_ratio, seed.
        await h.click(ANN, "pick:flux-dev")
        mark = h.tg.mark()
        await h.say(ANN, "a lighthouse")
        [post] = h.replicate.predictions_for(DEV)
        sent = post.json["input"]
        assert (sent["width"], sent["height"], sent["aspect_ratio"], sent["seed"]) == (1024, 576, "16:9", 42)
        assert "negative_prompt" not in sent and sent["prompt"].startswith("a lighthouse. photorealistic")
        caption = _caption(h, ANN, mark)
        assert "FLUX Dev ignores: negative prompt" in caption and "Seed 42" in caption and "📐 64×48" in caption

        # FLUX 1.1 [pro] on Replicate: aspect_ratio and seed.
        await h.click(ANN, "pick:flux-pro")
        mark = h.tg.mark()
        await h.say(ANN, "a lighthouse")
        [post] = h.replicate.predictions_for(PRO)
        sent = post.json["input"]
        assert (sent["aspect_ratio"], sent["seed"]) == ("16:9", 42) and "negative_prompt" not in sent
        assert "Seed 42" in _caption(h, ANN, mark)

        # A flag wins over the stored value, for that prompt only.
        h.gemini.reset()
        await h.click(ANN, "pick:gemini-flash")
        await h.say(ANN, "a lighthouse --ar 9:16 --style none")
        [call] = h.gemini.requests
        assert call.json["generationConfig"]["imageConfig"] == {"aspectRatio": "9:16"}
        assert call.json["contents"][0]["parts"][0]["text"] == "a lighthouse\n\nAvoid: text, watermark"


async def test_pollinations_gets_size_seed_and_negative_prompt_in_its_query(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, keys=False) as h:  # keyless: Pollinations is all there is
        await _configure(h, ANN)
        mark = h.tg.mark()
        await h.say(ANN, "a lighthouse")
        [req] = h.pollinations.requests
        assert req.path.startswith("/prompt/a lighthouse. photorealistic")
        assert {k: req.query[k] for k in ("width", "height", "seed", "negative_prompt")} == {
            "width": "1024",
            "height": "576",
            "seed": "42",
            "negative_prompt": "text, watermark",
        }
        caption = _caption(h, ANN, mark)
        assert "ignores" not in caption and "Seed 42" in caption


async def test_malformed_flags_are_refused_without_charge(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        await h.say(ANN, "a fox --n 7")
        assert "--n takes a number from 1 to 4, not “7”" in h.texts(ANN)[-1]
        await h.say(ANN, "a fox --size big")
        assert "Unknown option --size" in h.texts(ANN)[-1]
        assert await h.generations() == [] and await h.used_today(ANN.id) == 0
        assert h.gemini.requests == [] and h.replicate.requests == [] and h.pollinations.requests == []


async def test_four_images_at_once_as_one_album_four_units(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, GEMINI_TIMEOUT=5) as h:
        h.gemini.behave("delay", seconds=0.6)
        await h.say(ANN, "four foxes --n 4 --seed 100")
        assert len(h.gemini.requests) == 4
        [album] = h.tg.calls_of("sendMediaGroup", ok=True, chat_id=ANN.id)
        assert [item["media_group_id"] for item in album.result] == [album.result[0]["media_group_id"]] * 4
        assert [bool(item.get("caption")) for item in album.result] == [True, False, False, False]
        assert len(album.params["media"]) == 4 and all(h.gemini.made(album.files[f"media[{i}]"]) for i in range(4))
        assert h.photos(ANN) == []
        assert await h.used_today(ANN.id) == 4
        [row] = await h.generations()
        assert (row.status, row.units, row.sent_message_id) == ("delivered", 4, album.result[0]["message_id"])
        # At the same time: four 0.6 s answers took well under 4 × 0.6 s (the rows time the provider step).
        assert row.latency_ms is not None and row.latency_ms < 1800


async def test_an_image_that_fails_everywhere_is_not_charged(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, keys=False) as h:
        h.pollinations.behave("status", status=500, times=1)  # one of the four answers fails
        await h.say(ANN, "four foxes --n 4")
        assert len(h.pollinations.requests) == 4
        [album] = h.tg.calls_of("sendMediaGroup", ok=True, chat_id=ANN.id)
        assert len(album.result) == 3
        assert await h.used_today(ANN.id) == 3
        [row] = await h.generations()
        assert (row.status, row.units) == ("delivered", 3)
