"""Delivery of several images: one album, the sent messages (and their file ids) handed back in order;
one by one when the album is refused or an image cannot go as a photo."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.catalog import ModelId
from bot.delivery import Delivery
from bot.i18n import create_i18n
from bot.levels import Level
from bot.providers.base import ImageOptions
from bot.services.generation import GeneratedImage, GenerationResult
from bot.services.jobs import JobView
from tests.fakes.providers import image_color, make_image

BotFactory = Callable[..., Any]
CHAT = 801
COLORS = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0)]


def _job() -> JobView:
    return JobView(
        id=1, user_id=CHAT, chat_id=CHAT, prompt="four <foxes>", model=ModelId.GEMINI_FLASH, level=Level.USER,
        options=ImageOptions(count=4), units=4, quota_day=None, locale="en", status_message_id=None,
        enqueued_at=None, attempt=1,
    )  # fmt: skip


def _result(images: list[bytes]) -> GenerationResult:
    made = [
        GeneratedImage(data, "image/png", ModelId.GEMINI_FLASH, "gemini", "gemini-x", seed=i, width=64, height=48)
        for i, data in enumerate(images)
    ]
    return GenerationResult(ModelId.GEMINI_FLASH, made, [], 5)


async def test_an_album_hands_back_every_message_and_file_id_in_order(make_bot: BotFactory) -> None:
    b = await make_bot()
    sent = await Delivery(b.bot, create_i18n()).send_images(
        _job(), _result([make_image(c) for c in COLORS]), left=1, limit=5
    )
    [album] = b.tg.calls_of("sendMediaGroup", ok=True, chat_id=CHAT)
    assert sent.failure is None and sent.message_ids == [m["message_id"] for m in album.result]
    assert len(sent.messages) == 4 and len(set(sent.file_ids)) == 4 and None not in sent.file_ids
    uploaded = [album.files[f"media[{i}]"] for i in range(4)]
    assert [image_color(data) for data in uploaded] == COLORS  # the order of the result
    assert "four &lt;foxes&gt;" in album.params["media"][0]["caption"]
    assert all("caption" not in item for item in album.params["media"][1:])


async def test_a_refused_album_goes_one_by_one_each_with_its_caption(make_bot: BotFactory) -> None:
    b = await make_bot()
    b.tg.fail("sendMediaGroup", status=400, description="Bad Request: group send failed", times=None)
    sent = await Delivery(b.bot, create_i18n()).send_images(
        _job(), _result([make_image(c) for c in COLORS[:2]]), left=None, limit=0
    )
    photos = b.tg.sent_photos(CHAT)
    assert len(photos) == 2 and sent.message_ids == [p.result["message_id"] for p in photos]
    assert "Seed 0" in photos[0].result["caption"] and "Seed 1" in photos[1].result["caption"]
    assert len(sent.file_ids) == 2 and None not in sent.file_ids
