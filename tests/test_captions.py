"""The result caption: model, seed and size actually used, ignored options once, escaped prompt, 1024 limit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.captions import result_caption
from bot.catalog import ModelId
from bot.i18n import create_i18n
from bot.providers.base import Option
from bot.services.generation import GeneratedImage, GenerationResult
from bot.texts import CAPTION_LIMIT, tg_len


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"):
        yield


def _image(seed: int | None, step: ModelId = ModelId.GEMINI_FLASH, **extra: object) -> GeneratedImage:
    return GeneratedImage(b"", "image/png", step, "gemini", "models/gemini-x", seed=seed, width=1024, height=576,
                          **extra)  # type: ignore[arg-type]  # fmt: skip


def _result(*images: GeneratedImage) -> GenerationResult:
    return GenerationResult(ModelId.GEMINI_FLASH, list(images), [], 10)


def test_one_image_names_model_seed_and_size() -> None:
    image = _image(42)
    caption = result_caption(_result(image), [image], "a <fox> & a hen", 3, 5)
    assert caption.startswith("✨ <b>Gemini Flash</b> <i>(gemini-x)</i>\n")
    assert "🌱 Seed 42 · 📐 1024×576" in caption
    assert "📝 a &lt;fox&gt; &amp; a hen" in caption and caption.endswith("Images left today: 3 of 5")


def test_an_album_lists_its_seeds_once_and_says_what_was_ignored_once() -> None:
    ignored = frozenset({Option.SEED, Option.NEGATIVE_PROMPT})
    images = [_image(None, ignored=ignored) for _ in range(3)]
    caption = result_caption(_result(*images), images, "foxes", None, 0)
    assert caption.count("Gemini Flash ignores: seed, negative prompt") == 1
    assert "Seed" not in caption and caption.count("📐 1024×576") == 1
    seeded = [_image(7), _image(8)]
    assert "🌱 Seeds 7, 8" in result_caption(_result(*seeded), seeded, "foxes", None, 0)


def test_a_fallback_image_in_an_album_is_named() -> None:
    images = [_image(1), _image(2, step=ModelId.POLLINATIONS)]
    caption = result_caption(_result(*images), images, "foxes", None, 0)
    assert "Pollinations FLUX" in caption and "Gemini Flash was unavailable" in caption


def test_a_long_prompt_is_cut_to_the_caption_limit() -> None:
    images = [_image(n, ignored=frozenset({Option.SEED})) for n in range(4)]
    caption = result_caption(_result(*images), images, "<&>" * 2000, 1, 5)
    visible = caption.replace("<b>", "").replace("</b>", "").replace("<i>", "").replace("</i>", "")
    visible = visible.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert tg_len(visible) <= CAPTION_LIMIT and caption.endswith("Images left today: 1 of 5")
