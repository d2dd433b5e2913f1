"""A 4000-character Cyrillic prompt through the real polling loop, answered by keyless Pollinations: the
URL carries a cut prompt, and the caption says so in the user's language."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.providers.pollinations import URL_PROMPT_MAX
from tests.fakes.telegram import FakeUser
from tests.harness import Harness

pytestmark = pytest.mark.e2e

OLGA = FakeUser(id=641, first_name="Ольга", language_code="ru")
ANN = FakeUser(id=642, first_name="Ann")
LONG = ("Старый маяк на скалистом берегу в шторм, " * 100)[:4000]


async def test_a_long_prompt_is_cut_for_the_url_and_the_caption_says_so(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, keys=False) as h:
        await h.say(OLGA, LONG)
        await h.say(ANN, "a short one")
        [olga_photo] = h.photos(OLGA)
        [ann_photo] = h.photos(ANN)
    assert "сокращённый вариант" in olga_photo.result["caption"]
    assert "shortened" not in ann_photo.result["caption"] and "✂️" not in ann_photo.result["caption"]
    first = h.pollinations.requests[0]
    assert len(first.raw_path.split("?", 1)[0]) <= len("/prompt/") + URL_PROMPT_MAX
