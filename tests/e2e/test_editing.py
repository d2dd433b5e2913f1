"""Issue 10, editing and upscale, end to end: the real bot polling the fake Bot API, the photo fetched
with getFile and the file download, and the real clients (google-genai, httpx) against the fake
Gemini and Replicate servers."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.clock import ManualClock
from keyboards.results import ResultAction, ResultButton
from tests.fakes.providers import make_image
from tests.harness import FakeUser, Harness, photo_bytes

pytestmark = pytest.mark.e2e

ANN = FakeUser(id=1001, first_name="Ann", username="ann")
BOB = FakeUser(id=1002, first_name="Bob", username="bob")
IVAN = FakeUser(id=1003, first_name="Иван", username="ivan", language_code="ru")
KONTEXT = "black-forest-labs/flux-kontext-pro"
KONTEXT_DEV = "black-forest-labs/flux-kontext-dev"
ESRGAN = "nightmareai/real-esrgan"
PHOTO = make_image((250, 250, 250), (80, 60), "JPEG")  # what the user sends: a real JPEG


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


def from_data_uri(uri: str) -> bytes:
    assert uri.startswith("data:image/"), uri[:40]
    return base64.b64decode(uri.split(",", 1)[1])


async def send_photo(h: Harness, user: FakeUser, caption: str, data: bytes = PHOTO) -> None:
    width, height = size_of(data)
    await h.push(h.tg.photo(user, data, caption=caption, width=width, height=height))


async def generated_image(h: Harness, user: FakeUser) -> tuple[int, int, bytes]:
    """A prompt's result: its generation id, its message id and the photo's bytes as Telegram holds it."""
    await h.say(user, "a lighthouse at dusk")
    [call] = h.photos(user)
    [row] = [g for g in await h.generations() if g.user_id == user.id]
    return row.id, call.result["message_id"], photo_bytes(call)


async def test_a_captioned_photo_goes_to_gemini_with_its_bytes(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        await send_photo(h, ANN, "make the sky <pink> & add stars")

        assert h.gemini.received_images() == [PHOTO]  # the very bytes the user sent, fetched from Telegram
        assert "make the sky <pink> & add stars" in h.gemini.received_texts()
        assert h.tg.calls_of("getFile") and len(h.tg.downloads) == 1
        [call] = h.photos(ANN)
        assert h.gemini.made(photo_bytes(call))
        caption = call.params["caption"]
        assert "Edited with Gemini Flash" in caption and "make the sky &lt;pink&gt; &amp; add stars" in caption
        assert await h.used_today(ANN.id) == 1
        [row] = await h.generations()
        assert (row.kind, row.status, row.provider) == ("edit", "delivered", "gemini")
        assert row.input_file_id and row.prompt == "make the sky <pink> & add stars"


async def test_edit_falls_back_to_flux_kontext_on_replicate(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        h.gemini.behave("status", status=503)
        await send_photo(h, ANN, "turn it into a watercolour")

        [prediction] = h.replicate.predictions_for(KONTEXT)
        given = prediction.json["input"]
        assert from_data_uri(given["input_image"]) == PHOTO
        assert given["prompt"] == "turn it into a watercolour"
        assert given["aspect_ratio"] == "match_input_image"
        assert prediction.header("authorization") == "Bearer r8_test_token_0003"
        [call] = h.photos(ANN)
        assert h.replicate.made_by(photo_bytes(call), KONTEXT)
        assert "flux-kontext-pro" in call.params["caption"]
        assert await h.used_today(ANN.id) == 1
        [row] = await h.generations()
        assert (row.status, row.provider, row.model_used, row.fallback) == ("delivered", "replicate", KONTEXT, True)


async def test_with_only_an_hf_token_kontext_dev_edits_through_the_hf_router(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with Harness(tmp_path, clock, REPLICATE_API_TOKEN="") as h:
        h.gemini.behave("status", status=503)
        await send_photo(h, ANN, "turn it into a watercolour")

        assert h.replicate.predictions_for(KONTEXT) == []
        [prediction] = h.replicate.predictions_for(KONTEXT_DEV)
        assert prediction.path.startswith("/replicate/")  # the HF router's Replicate route
        assert prediction.header("authorization") == "Bearer hf_test_token_0002"
        given = prediction.json["input"]
        assert from_data_uri(given["input_image"]) == PHOTO
        assert (given["prompt"], given["disable_safety_checker"]) == ("turn it into a watercolour", False)
        [call] = h.photos(ANN)
        assert h.replicate.made_by(photo_bytes(call), KONTEXT_DEV)
        [row] = await h.generations()
        assert (row.status, row.provider, row.model_used) == (
            "delivered",
            "hf-replicate",
            "black-forest-labs/FLUX.1-Kontext-dev",
        )
        assert await h.used_today(ANN.id) == 1


async def test_both_editors_failing_is_said_plainly_and_not_charged(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        h.gemini.behave("status", status=503)
        h.replicate.behave("status", status=500)  # Kontext [pro] direct and [dev] through the HF router
        await send_photo(h, IVAN, "сделай небо розовым")

        assert h.photos(IVAN) == []
        assert h.texts(IVAN)[-1].startswith("Не получилось отредактировать: все сервисы сейчас недоступны")
        assert await h.used_today(IVAN.id) == 0
        [row] = await h.generations()
        assert (row.kind, row.status) == ("edit", "failed")
        assert [a["provider"] for a in row.attempts] == ["gemini", "replicate", "hf-replicate"]


async def test_a_refusal_ends_the_edit_without_trying_kontext(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        h.gemini.behave("blocked")
        await send_photo(h, ANN, "something the filter refuses")

        assert h.replicate.predictions_for(KONTEXT) == []
        assert h.texts(ANN)[-1].startswith("🚫 The image model's content policy refused this request")
        assert await h.used_today(ANN.id) == 0
        [row] = await h.generations()
        assert row.status == "refused"


async def test_a_text_reply_to_the_bots_image_edits_that_image(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        gid, message_id, delivered = await generated_image(h, ANN)
        await h.push(h.tg.message(ANN, "add a red boat", reply_to_message_id=message_id))

        assert h.gemini.received_images() == [delivered]
        assert h.gemini.received_texts()[-1] == "add a red boat"
        assert len(h.photos(ANN)) == 2
        assert await h.used_today(ANN.id) == 2
        assert [(g.kind, g.parent_id) for g in await h.generations()] == [("generate", None), ("edit", gid)]


async def test_the_edit_button_asks_for_an_instruction_then_edits(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        gid, message_id, delivered = await generated_image(h, ANN)
        await h.click(ANN, ResultButton(action=ResultAction.EDIT, generation_id=gid).pack(), message_id)
        assert h.texts(ANN)[-1].startswith("✏️ What should I change in this picture?")

        mark = h.tg.mark()
        await h.say(ANN, "make it night")
        assert h.gemini.received_images() == [delivered]
        assert len(h.photos(ANN, since=mark)) == 1
        rows = await h.generations()
        assert (rows[-1].kind, rows[-1].parent_id, rows[-1].prompt) == ("edit", gid, "make it night")

        await h.say(ANN, "a plain prompt again")  # the state is gone: text is a prompt once more
        assert (await h.generations())[-1].kind == "generate"


async def test_upscale_reaches_the_upscaler_and_doubles_the_image(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        gid, message_id, delivered = await generated_image(h, ANN)
        await h.click(ANN, ResultButton(action=ResultAction.UPSCALE, generation_id=gid).pack(), message_id)

        [prediction] = h.replicate.predictions_for(ESRGAN)
        assert prediction.path == "/v1/predictions"
        assert prediction.json["version"].startswith(ESRGAN + ":")
        assert prediction.json["input"]["scale"] == 2
        assert from_data_uri(prediction.json["input"]["image"]) == delivered
        [_, call] = h.photos(ANN)
        upscaled = photo_bytes(call)
        assert h.replicate.made_by(upscaled, ESRGAN)
        width, height = size_of(delivered)
        assert size_of(upscaled) == (2 * width, 2 * height)
        assert "Upscaled ×2" in call.params["caption"]
        assert await h.used_today(ANN.id) == 2
        row = (await h.generations())[-1]
        assert (row.kind, row.parent_id, row.status) == ("upscale", gid, "delivered")


async def test_buttons_under_someone_elses_image_are_refused(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        gid, message_id, _ = await generated_image(h, ANN)
        await h.say(BOB, "/start")
        for action in (ResultAction.UPSCALE, ResultAction.EDIT):
            data = ResultButton(action=action, generation_id=gid).pack()
            await h.push(h.tg.callback(BOB, data, message_id, chat_id=ANN.id))
            answer = h.tg.calls_of("answerCallbackQuery")[-1]
            assert "belongs to someone else" in answer.params["text"]
        assert h.replicate.predictions_for(ESRGAN) == []
        assert len(await h.generations()) == 1
        assert await h.used_today(BOB.id) == 0


async def test_no_upscaler_without_a_replicate_token(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, REPLICATE_API_TOKEN="") as h:
        assert h.app is not None
        assert not h.app.services.generation.can_upscale()
        gid, message_id, _ = await generated_image(h, ANN)
        await h.click(ANN, ResultButton(action=ResultAction.UPSCALE, generation_id=gid).pack(), message_id)
        assert "not available" in h.tg.calls_of("answerCallbackQuery")[-1].params["text"]
        assert len(await h.generations()) == 1


def oversized_sizes(file_id: str, **size: Any) -> list[dict[str, Any]]:
    base = {"file_id": file_id, "file_unique_id": "AgADbig", "width": 1280, "height": 960, "file_size": 1000}
    return [{**base, **size}]


async def test_an_oversized_photo_is_refused_before_download(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        stored = h.tg.add_file(PHOTO, folder="photos")
        # Telegram says 30 MB: refused from the message itself, before getFile.
        photo = oversized_sizes(stored.file_id, file_size=30 * 1024 * 1024)
        await h.push(h.tg.message(ANN, photo=photo, caption="make it red"))
        # Within the bounds as sent, but getFile reports 11 MB: refused before the download.
        big = h.tg.add_file(b"\xff" * (11 * 1024 * 1024), folder="photos")
        await h.push(h.tg.message(ANN, photo=oversized_sizes(big.file_id), caption="make it red"))

        texts = h.texts(ANN)  # the refusal; the second job's status line; its failure
        first, second = texts[0], texts[-1]
        assert len(texts) == 3 and first.startswith("This photo is too large for me to work on")
        assert second.startswith("This photo is too large for me to work on. Nothing was charged")
        assert [c.params["file_id"] for c in h.tg.calls_of("getFile")] == [big.file_id]
        assert h.tg.downloads == []
        assert h.gemini.requests == [] and h.replicate.requests == []
        assert await h.used_today(ANN.id) == 0
        [row] = await h.generations()  # the second was a job: refunded, with the reason kept
        assert (row.status, row.error_class) == ("failed", "too_large")


async def test_of_several_sizes_the_largest_within_bounds_is_used(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        small = h.tg.add_file(PHOTO, folder="photos")
        sizes = [
            {"file_id": small.file_id, "file_unique_id": "a1", "width": 80, "height": 60, "file_size": len(PHOTO)},
            {"file_id": "AgACnever", "file_unique_id": "a2", "width": 9000, "height": 9000, "file_size": 9_000_000},
        ]
        await h.push(h.tg.message(ANN, photo=sizes, caption="sharpen"))
        assert [c.params["file_id"] for c in h.tg.calls_of("getFile")] == [small.file_id]
        assert h.gemini.received_images() == [PHOTO]


async def test_an_edit_cut_short_by_a_restart_resumes_and_fetches_the_photo_again(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with Harness(tmp_path, clock, GEMINI_TIMEOUT=30, SHUTDOWN_GRACE="0.2") as h:
        h.gemini.behave("delay", seconds=30)
        width, height = size_of(PHOTO)
        h.tg.push(h.tg.photo(ANN, PHOTO, caption="add a rainbow", width=width, height=height))
        await h.tg.wait_for("sendMessage", lambda c: "Editing" in c.params["text"], chat_id=ANN.id, timeout=30)
        for _ in range(300):  # the worker has the photo and is waiting on Gemini
            if h.gemini.requests:
                break
            await asyncio.sleep(0.05)
        assert h.gemini.requests and len(h.tg.downloads) == 1

        h.gemini.behave("ok")
        await h.restart()  # the running edit is handed back, then resumed by the new start
        await h.settle()

        assert h.gemini.received_images() == [PHOTO, PHOTO] and len(h.tg.downloads) == 2
        [call] = h.photos(ANN)
        assert h.gemini.made(photo_bytes(call))
        assert await h.used_today(ANN.id) == 1
        [row] = await h.generations()
        assert (row.kind, row.status) == ("edit", "delivered")
