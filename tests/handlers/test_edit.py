"""Editing through the real Dispatcher and the in-process worker, with scripted editors: when an edit
is taken at all, what the ✏️ state does with the next message, and photos that cannot be fetched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from bot.catalog import ModelId
from bot.levels import Level
from bot.providers.base import ProviderImage
from bot.services.editing import EditingService, EditStep
from keyboards.results import ResultAction, ResultButton
from models import Generation
from tests.fakes.telegram import FakeUser
from tests.support import png

ANN = FakeUser(id=801, first_name="Ann", username="ann")
BotFactory = Callable[..., Any]


class StubEditor:
    name = "stub-editor"

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, str, str]] = []

    def can_edit(self) -> bool:
        return True

    async def edit(self, image: bytes, mime_type: str, instruction: str) -> ProviderImage:
        self.calls.append((image, mime_type, instruction))
        return ProviderImage(png((1, 2, 3)), self.name, "stub/edit")

    async def aclose(self) -> None:
        return None


async def with_editor(make_bot: BotFactory, **env: Any) -> tuple[Any, StubEditor]:
    b = await make_bot(**env)
    editor = StubEditor()
    b.services.generation.editing = EditingService([EditStep(ModelId.GEMINI_FLASH, editor)])
    return b, editor


async def rows(b: Any) -> list[Generation]:
    async with b.services.sessions() as s:
        return list((await s.execute(select(Generation).order_by(Generation.id))).scalars())


async def used(b: Any) -> int:
    return int((await b.services.quota.status(ANN.id, Level.USER)).used)


async def test_without_any_editor_a_captioned_photo_is_not_taken(make_bot: BotFactory) -> None:
    b = await make_bot()  # no keys: no editor
    assert not b.services.generation.can_edit() and not b.services.generation.can_upscale()
    await b.feed(b.tg.photo(ANN, caption="make it red"))
    assert b.tg.sent_texts(ANN.id) == ["Editing is not available right now. Nothing was charged."]
    assert await rows(b) == [] and await used(b) == 0


async def test_a_captioned_photo_in_a_group_is_not_an_edit(make_bot: BotFactory) -> None:
    b, editor = await with_editor(make_bot)
    group = {"id": -100321, "type": "supergroup", "title": "Friends"}
    await b.feed(b.tg.photo(ANN, caption="make it red", chat=group))
    assert editor.calls == [] and await rows(b) == []


async def test_over_the_limit_an_edit_is_refused_like_a_prompt(make_bot: BotFactory) -> None:
    b, editor = await with_editor(make_bot, DAILY_LIMIT_USER="1")
    await b.feed(b.tg.photo(ANN, caption="make it red"))
    await b.feed(b.tg.photo(ANN, caption="make it blue"))
    assert len(editor.calls) == 1 and await used(b) == 1
    assert b.tg.sent_texts(ANN.id)[-1].startswith("You have used all 1 images for today.")


async def test_the_edit_state_takes_one_instruction_and_leaves_commands_and_menu_alone(make_bot: BotFactory) -> None:
    b, editor = await with_editor(make_bot)
    await b.feed(b.tg.message(ANN, "a lighthouse"))
    [photo] = b.tg.sent_photos(ANN.id)
    [row] = await rows(b)
    press = ResultButton(action=ResultAction.EDIT, generation_id=row.id).pack()

    await b.feed(b.tg.callback(ANN, press, photo.result["message_id"]))
    await b.feed(b.tg.message(ANN, "🎨 Generate"))  # the menu button opens the picker, not an edit
    assert editor.calls == [] and "Choose a model" in b.tg.sent_texts(ANN.id)[-1]
    await b.feed(b.tg.message(ANN, "/cancel"))
    assert b.tg.sent_texts(ANN.id)[-1] == "Cancelled."
    await b.feed(b.tg.message(ANN, "a second lighthouse"))  # a prompt again
    assert editor.calls == [] and len(b.tg.sent_photos(ANN.id)) == 2

    await b.feed(b.tg.callback(ANN, press, photo.result["message_id"]))
    await b.feed(b.tg.message(ANN, "add <b>fog</b>"))
    [(image, _mime, instruction)] = editor.calls
    assert instruction == "add <b>fog</b>" and image == b.tg.file_bytes(photo.result["photo"][-1]["file_id"])
    caption = b.tg.sent_photos(ANN.id)[-1].params["caption"]
    assert "add &lt;b&gt;fog&lt;/b&gt;" in caption  # the user's text is escaped, never markup


async def test_a_photo_telegram_no_longer_has_is_refunded_with_a_plain_message(make_bot: BotFactory) -> None:
    b, editor = await with_editor(make_bot)
    gone = [{"file_id": "AgACgone", "file_unique_id": "gone", "width": 64, "height": 64, "file_size": 100}]
    await b.feed(b.tg.message(ANN, photo=gone, caption="make it red"))
    assert editor.calls == []
    assert b.tg.sent_texts(ANN.id)[-1] == "I could not read this photo. Nothing was charged; please send it again."
    assert await used(b) == 0
    [row] = await rows(b)
    assert (row.kind, row.status) == ("edit", "failed")


async def test_a_new_captioned_photo_replaces_a_waiting_edit(make_bot: BotFactory) -> None:
    b, editor = await with_editor(make_bot)
    await b.feed(b.tg.message(ANN, "a lighthouse"))
    [photo] = b.tg.sent_photos(ANN.id)
    [row] = await rows(b)
    press = ResultButton(action=ResultAction.EDIT, generation_id=row.id).pack()
    await b.feed(b.tg.callback(ANN, press, photo.result["message_id"]))
    await b.feed(b.tg.photo(ANN, caption="make it red"))
    await b.feed(b.tg.message(ANN, "a second lighthouse"))
    assert [call[2] for call in editor.calls] == ["make it red"]
    assert [r.kind for r in await rows(b)] == ["generate", "edit", "generate"]
