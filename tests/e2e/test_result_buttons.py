"""The real bot, restarted between making an image and pressing its buttons, against the fake Bot
API (keeping photos re-encoded, as Telegram does) and the fake Gemini (google-genai doing real HTTP):
Regenerate and Original from the database alone, Original as the provider's untouched file until
ORIGINALS_DAYS have passed and the purge ran, and /history showing the kept image by its file id."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.clock import ManualClock
from keyboards.results import ResultAction, ResultButton
from models import OriginalImage
from tests.harness import FakeUser, Harness, is_image, photo_bytes

ANN = FakeUser(id=1101, first_name="Ann")
MALLORY = FakeUser(id=1102, first_name="Mallory")


def button(action: ResultAction, generation_id: int) -> str:
    return ResultButton(action=action, generation_id=generation_id).pack()


async def test_regenerate_and_original_after_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        h.tg.reencode_photos = True
        await h.say(ANN, "a lighthouse at dusk")
        [photo] = h.photos(ANN)
        [first] = await h.generations()
        assert button(ResultAction.REGENERATE, first.id) in photo.callback_datas
        original = photo_bytes(photo)  # what the bot uploaded: the provider's bytes
        assert original == h.gemini.image()
        assert h.tg.file_bytes(photo.result["photo"][-1]["file_id"]) != original  # Telegram keeps a JPEG

        await h.restart()  # nothing in memory survives: the row and the kept file id must do

        gemini_calls = len(h.gemini.requests)
        await h.click(ANN, button(ResultAction.REGENERATE, first.id), message_id=photo.result["message_id"])
        assert len(h.gemini.requests) == gemini_calls + 1
        second = (await h.generations())[-1]
        assert (second.prompt, second.parent_id, second.status) == ("a lighthouse at dusk", first.id, "delivered")
        again = h.photos(ANN)[-1]
        assert "a lighthouse at dusk" in again.result["caption"] and is_image(photo_bytes(again))
        assert await h.used_today(ANN.id) == 2

        mark = h.tg.mark()
        await h.click(ANN, button(ResultAction.ORIGINAL, first.id), message_id=photo.result["message_id"])
        [document] = h.tg.calls_of("sendDocument", ok=True, since=mark, chat_id=ANN.id)
        assert document.files["document"] == original  # the untouched file, not Telegram's copy
        assert document.filenames["document"] == f"image-{first.id}-1.png"
        assert len(h.gemini.requests) == gemini_calls + 1  # no provider call
        assert await h.used_today(ANN.id) == 2  # and no charge

        mark = h.tg.mark()
        await h.click(MALLORY, button(ResultAction.REGENERATE, first.id), message_id=photo.result["message_id"])
        [refusal] = h.tg.calls_of("answerCallbackQuery", ok=True, since=mark)
        assert refusal.params["show_alert"] is True and "someone else's image" in refusal.params["text"]
        assert len(await h.generations()) == 2

        mark = h.tg.mark()
        await h.say(ANN, "/history")
        thumbs = h.tg.calls_of("sendPhoto", ok=True, since=mark, chat_id=ANN.id)
        assert [t.params["photo"] for t in thumbs] == [
            again.result["photo"][-1]["file_id"],
            photo.result["photo"][-1]["file_id"],
        ]
        assert all(t.files == {} for t in thumbs)


async def test_every_original_of_an_album_until_originals_days_have_passed(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, ORIGINALS_DAYS=3) as h:
        h.tg.reencode_photos = True
        await h.say(ANN, "two cats --n 2")
        [album] = h.tg.calls_of("sendMediaGroup", ok=True, chat_id=ANN.id)
        await h.say(ANN, "a lighthouse at dusk")
        album_job, single_job = [g.id for g in await h.generations()]
        provider = h.gemini.image()
        assert [h.tg.file_bytes(m["photo"][-1]["file_id"]) == provider for m in album.result] == [False, False]

        await h.restart()

        mark = h.tg.mark()
        await h.click(ANN, button(ResultAction.ORIGINAL, album_job))
        documents = h.tg.calls_of("sendDocument", ok=True, since=mark, chat_id=ANN.id)
        assert [d.files["document"] for d in documents] == [provider, provider]
        assert [d.filenames["document"] for d in documents] == [f"image-{album_job}-1.png", f"image-{album_job}-2.png"]
        file_ids = [d.result["document"]["file_id"] for d in documents]

        mark = h.tg.mark()
        await h.click(ANN, button(ResultAction.ORIGINAL, album_job))
        again = h.tg.calls_of("sendDocument", ok=True, since=mark, chat_id=ANN.id)
        assert [(d.files, d.params["document"]) for d in again] == [({}, file_ids[0]), ({}, file_ids[1])]

        clock.advance(timedelta(days=3, minutes=1))
        await h.restart()  # the purge, a lease-held loop, runs its first round at start-up
        for _ in range(200):
            rows = await h.rows(OriginalImage)
            if all(r.data is None for r in rows):
                break
            await asyncio.sleep(0.05)
        # The lighthouse's bytes are gone with its row; the album keeps only its documents' file ids.
        assert sorted((r.generation_id, r.position, r.data, r.document_file_id) for r in rows) == [
            (album_job, 0, None, file_ids[0]),
            (album_job, 1, None, file_ids[1]),
        ]

        mark = h.tg.mark()
        await h.click(ANN, button(ResultAction.ORIGINAL, single_job))
        [answer] = h.tg.calls_of("answerCallbackQuery", ok=True, since=mark)
        assert answer.params["text"] == "The original is no longer kept." and answer.params["show_alert"] is True
        assert h.tg.calls_of("sendDocument", since=mark) == []

        await h.click(ANN, button(ResultAction.ORIGINAL, album_job))
        later = h.tg.calls_of("sendDocument", ok=True, since=mark, chat_id=ANN.id)
        assert [(d.files, d.params["document"]) for d in later] == [({}, file_ids[0]), ({}, file_ids[1])]
        assert [h.tg.file_bytes(file_id) for file_id in file_ids] == [provider, provider]
