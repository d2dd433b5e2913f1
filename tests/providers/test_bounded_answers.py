"""Provider answers are bounded before they are read: a 200 MB body is cut at PROVIDER_MAX_BYTES, a
small PNG of 144 (or 49) megapixels is refused from its header, and memory stays far below the body."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from bot.catalog import ModelId
from bot.providers.base import ErrorKind, ImageOptions, ProviderError, decode_image
from bot.providers.flux_pro import PRO_MODEL, FluxProProvider
from bot.providers.gemini import GeminiProvider
from bot.providers.limits import DEFAULT_MAX_BYTES
from bot.providers.pollinations import PollinationsProvider
from tests.fakes.providers import FakeGemini, FakePollinations, FakeReplicate, bomb_png

MB = 1024 * 1024
R8 = "r8_SECRET_replicate_token_987654"


@pytest.fixture
async def pollinations() -> AsyncIterator[FakePollinations]:
    async with FakePollinations() as server:
        yield server


async def _fail(provider: object, model: ModelId) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        try:
            await provider.generate(model, "a fox", ImageOptions())  # type: ignore[attr-defined]
        finally:
            await provider.aclose()  # type: ignore[attr-defined]
    return info.value


async def test_a_200_mb_body_is_cut_at_the_default_cap_in_bounded_memory(pollinations: FakePollinations) -> None:
    pollinations.behave("huge", size=200 * MB)
    provider = PollinationsProvider(None, pollinations.url, 30)
    tracemalloc.start()
    try:
        started = time.monotonic()
        err = await _fail(provider, ModelId.POLLINATIONS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.kind is ErrorKind.TOO_LARGE and f"{DEFAULT_MAX_BYTES}-byte cap" in err.detail
    assert peak < 3 * DEFAULT_MAX_BYTES < 200 * MB, peak  # the cap, not the body, sets the peak
    assert time.monotonic() - started < 10


async def test_a_small_png_of_144_megapixels_is_refused_without_decoding(pollinations: FakePollinations) -> None:
    pollinations.behave("bomb", size=12000)
    assert len(bomb_png(12000, 12000)) < 500 * 1024
    started = time.monotonic()
    err = await _fail(PollinationsProvider(None, pollinations.url, 30), ModelId.POLLINATIONS)
    assert err.kind is ErrorKind.TOO_LARGE and "pixel" in err.detail
    assert time.monotonic() - started < 2  # decoding 144 MP would take far longer (and 144+ MB)


def test_pillow_s_warning_range_is_refused_too() -> None:
    """7000×7000 (49 MP) lies between the cap and twice it, where Pillow only warns."""
    with pytest.raises(ProviderError) as info:
        decode_image(bomb_png(7000, 7000), "p", "m")
    assert info.value.kind is ErrorKind.TOO_LARGE
    assert decode_image(bomb_png(6000, 6000), "p", "m").mime_type == "image/png"  # 36 MP is fine


async def test_the_cap_is_a_setting(pollinations: FakePollinations) -> None:
    pollinations.behave("huge", size=3 * MB)
    err = await _fail(PollinationsProvider(None, pollinations.url, 30, max_bytes=1 * MB), ModelId.POLLINATIONS)
    assert err.kind is ErrorKind.TOO_LARGE and f"{MB}-byte cap" in err.detail


async def test_gemini_inline_bomb_is_refused() -> None:
    async with FakeGemini() as gemini:
        gemini.behave("bomb", size=12000)
        provider = GeminiProvider("AIza-key", "gemini-3.1-flash-image", gemini.url, 30)
        err = await _fail(provider, ModelId.GEMINI_FLASH)
    assert err.kind is ErrorKind.TOO_LARGE


async def test_flux_pro_output_file_is_cut_at_the_cap() -> None:
    async with FakeReplicate(tokens={R8}) as replicate:
        replicate.behave("huge", key=PRO_MODEL, size=200 * MB)
        provider = FluxProProvider(None, R8, replicate.url, replicate.url, 30, max_bytes=2 * MB)
        err = await _fail(provider, ModelId.FLUX_PRO)
    assert err.kind is ErrorKind.TOO_LARGE and err.model == PRO_MODEL
