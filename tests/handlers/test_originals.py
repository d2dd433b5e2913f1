"""📎 Original through the real Dispatcher, the in-process workers and the fake Bot API (re-encoding
photos as Telegram does): the provider's exact bytes as a document, for one photo and for every image
of an album; a second press by the document's file id with no upload; expiry (ORIGINALS_DAYS, the
purge) and ORIGINALS_DAYS=0; the size cap; /history clear."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.catalog import ModelId
from bot.levels import Level
from bot.providers.base import ImageOptions
from keyboards.history import ClearChoice, HistoryClear
from keyboards.results import ResultAction, ResultButton
from models import Generation, OriginalImage
from tests.fakes.telegram import Call, FakeUser
from tests.support import png

ANN = FakeUser(id=901, first_name="Ann")
BOB = FakeUser(id=902, first_name="Bob", language_code="ru")
BotFactory = Callable[..., Any]
GONE = "The original is no longer kept."


def original(generation_id: int) -> str:
    return ResultButton(action=ResultAction.ORIGINAL, generation_id=generation_id).pack()


async def kept(b: Any) -> list[OriginalImage]:
    async with b.services.sessions() as session:
        rows = await session.execute(
            select(OriginalImage).order_by(OriginalImage.generation_id, OriginalImage.position)
        )
        return list(rows.scalars())


async def made(b: Any, user: FakeUser, prompt: str, count: int = 1) -> int:
    b.tg.reencode_photos = True  # Telegram keeps a JPEG of a photo: only the kept bytes are the original
    if count == 1:
        await b.feed(b.tg.message(user, prompt))
    else:
        submitted = await b.services.jobs.submit(
            user_id=user.id,
            chat_id=user.id,
            level=Level.USER,
            prompt=prompt,
            model=ModelId.GEMINI_FLASH,
            options=ImageOptions(count=count),
        )
        assert submitted.generation_id is not None
        await b.services.queue.enqueue(submitted.generation_id)
        await b.services.queue.drained()
    async with b.services.sessions() as session:
        return int(await session.scalar(select(Generation.id).order_by(Generation.id.desc()).limit(1)) or 0)


def documents(b: Any, since: int = 0) -> list[Call]:
    return b.tg.calls_of("sendDocument", ok=True, since=since)


def last_answer(b: Any) -> Call:
    return b.tg.calls_of("answerCallbackQuery", ok=True)[-1]


async def test_a_photo_s_original_is_the_providers_bytes_then_its_document_by_file_id(make_bot: BotFactory) -> None:
    b = await make_bot()
    gid = await made(b, ANN, "a red fox")
    provider_bytes = png(b.stubs["gemini"].color)
    [photo] = b.tg.sent_photos(ANN.id)
    assert b.tg.file_bytes(photo.result["photo"][-1]["file_id"]) != provider_bytes  # Telegram's JPEG
    [row] = await kept(b)
    assert (row.generation_id, row.user_id, row.position, row.mime_type) == (gid, ANN.id, 0, "image/png")

    await b.feed(b.tg.callback(ANN, original(gid), message_id=photo.result["message_id"]))
    [first] = documents(b)
    assert first.files["document"] == provider_bytes
    assert first.filenames["document"] == f"image-{gid}-1.png"
    file_id = first.result["document"]["file_id"]
    assert (await kept(b))[0].document_file_id == file_id

    mark = b.tg.mark()
    await b.feed(b.tg.callback(ANN, original(gid), message_id=photo.result["message_id"]))
    [second] = documents(b, since=mark)
    assert second.files == {} and second.params["document"] == file_id  # no upload
    assert b.tg.file_bytes(second.result["document"]["file_id"]) == provider_bytes
    assert len(b.stubs["gemini"].calls) == 1
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 1  # nothing charged


async def test_every_image_of_an_album_is_sent_as_its_original(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/start"))
    gid = await made(b, ANN, "two cats", count=2)
    [album] = b.tg.calls_of("sendMediaGroup", ok=True, chat_id=ANN.id)
    provider_bytes = png(b.stubs["gemini"].color)
    assert [b.tg.file_bytes(m["photo"][-1]["file_id"]) != provider_bytes for m in album.result] == [True, True]
    assert [(r.generation_id, r.position) for r in await kept(b)] == [(gid, 0), (gid, 1)]

    await b.feed(b.tg.callback(ANN, original(gid)))
    sent = documents(b)
    assert [d.files["document"] for d in sent] == [provider_bytes, provider_bytes]
    assert [d.filenames["document"] for d in sent] == [f"image-{gid}-1.png", f"image-{gid}-2.png"]
    ids = [d.result["document"]["file_id"] for d in sent]
    assert [r.document_file_id for r in await kept(b)] == ids

    mark = b.tg.mark()
    await b.feed(b.tg.callback(ANN, original(gid)))
    again = documents(b, since=mark)
    assert [(d.files, d.params["document"]) for d in again] == [({}, ids[0]), ({}, ids[1])]


async def test_after_originals_days_the_purge_drops_the_bytes_and_the_button_says_so(
    make_bot: BotFactory, clock: Any
) -> None:
    b = await make_bot(ORIGINALS_DAYS=2)
    gid = await made(b, BOB, "лиса")
    [row] = await kept(b)
    assert row.expires_at == clock.now() + timedelta(days=2)

    clock.advance(timedelta(days=2) - timedelta(seconds=1))
    assert await b.services.originals.purge() == 0
    assert (await kept(b))[0].data is not None

    clock.advance(timedelta(seconds=1))
    # Expired but not purged yet: not handed out either.
    await b.feed(b.tg.callback(BOB, original(gid)))
    assert documents(b) == []
    assert last_answer(b).params["text"] == "Оригинал больше не хранится."
    assert await b.services.originals.purge() == 1
    assert await kept(b) == []

    await b.feed(b.tg.callback(BOB, original(gid)))
    assert documents(b) == []
    assert last_answer(b).params["show_alert"] is True and "Оригинал" in last_answer(b).params["text"]
    assert b.tg.calls_of("getFile") == []  # nothing fetched from Telegram's re-encoded copy either


async def test_a_document_file_id_outlives_the_bytes(make_bot: BotFactory, clock: Any) -> None:
    b = await make_bot(ORIGINALS_DAYS=1)
    gid = await made(b, ANN, "a red fox")
    await b.feed(b.tg.callback(ANN, original(gid)))
    [first] = documents(b)

    clock.advance(timedelta(days=1, hours=1))
    assert await b.services.originals.purge() == 1
    [row] = await kept(b)
    assert row.data is None and row.document_file_id == first.result["document"]["file_id"]

    mark = b.tg.mark()
    await b.feed(b.tg.callback(ANN, original(gid)))
    [again] = documents(b, since=mark)
    assert again.files == {} and again.params["document"] == first.result["document"]["file_id"]
    assert b.tg.file_bytes(again.params["document"]) == png(b.stubs["gemini"].color)


async def test_originals_days_zero_keeps_nothing(make_bot: BotFactory) -> None:
    b = await make_bot(ORIGINALS_DAYS=0)
    gid = await made(b, ANN, "a red fox")
    assert await kept(b) == []
    await b.feed(b.tg.callback(ANN, original(gid)))
    assert documents(b) == []
    assert last_answer(b).params == {"callback_query_id": last_answer(b).params["callback_query_id"],
                                     "text": GONE, "show_alert": True}  # fmt: skip


async def test_an_image_that_went_as_a_file_is_resent_by_its_file_id(make_bot: BotFactory) -> None:
    b = await make_bot()
    b.tg.fail("sendPhoto", status=400, description="Bad Request: PHOTO_INVALID_DIMENSIONS")
    gid = await made(b, ANN, "a red fox")
    [delivered] = b.tg.calls_of("sendDocument", ok=True)
    assert delivered.files["document"] == png(b.stubs["gemini"].color)
    assert await kept(b) == []  # the document is the untouched file already: no copy kept

    mark = b.tg.mark()
    await b.feed(b.tg.callback(ANN, original(gid)))
    [again] = documents(b, since=mark)
    assert again.files == {} and again.params["document"] == delivered.result["document"]["file_id"]


async def test_history_clear_forgets_the_originals_too(make_bot: BotFactory) -> None:
    b = await make_bot()
    await made(b, ANN, "a red fox")
    await made(b, BOB, "лиса")
    assert [r.user_id for r in await kept(b)] == [ANN.id, BOB.id]
    await b.feed(b.tg.message(ANN, "/history clear"))
    ask = b.tg.sent_messages(ANN.id)[-1]
    await b.feed(b.tg.callback(ANN, HistoryClear(choice=ClearChoice.YES).pack(), message_id=ask.result["message_id"]))
    assert [r.user_id for r in await kept(b)] == [BOB.id]


async def test_someone_else_cannot_take_the_original(make_bot: BotFactory) -> None:
    b = await make_bot()
    gid = await made(b, ANN, "a red fox")
    await b.feed(b.tg.callback(BOB, original(gid)))
    assert documents(b) == [] and "чужому изображению" in last_answer(b).params["text"]
