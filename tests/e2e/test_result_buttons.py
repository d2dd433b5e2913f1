"""The real bot, restarted between making an image and pressing its buttons, against the fake Bot
API and the fake Gemini (google-genai doing real HTTP): Regenerate and Original from the database
alone, and /history showing the kept image by its file id."""

from __future__ import annotations

from pathlib import Path

from bot.clock import ManualClock
from keyboards.results import ResultAction, ResultButton
from tests.harness import FakeUser, Harness, is_image, photo_bytes

ANN = FakeUser(id=1101, first_name="Ann")
MALLORY = FakeUser(id=1102, first_name="Mallory")


def button(action: ResultAction, generation_id: int) -> str:
    return ResultButton(action=action, generation_id=generation_id).pack()


async def test_regenerate_and_original_after_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        await h.say(ANN, "a lighthouse at dusk")
        [photo] = h.photos(ANN)
        [first] = await h.generations()
        assert button(ResultAction.REGENERATE, first.id) in photo.callback_datas
        original = photo_bytes(photo)

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
        assert document.files["document"] == original  # Telegram's copy, downloaded by file id
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
