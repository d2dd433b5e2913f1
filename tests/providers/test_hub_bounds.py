"""FLUX Dev through the real huggingface_hub client, against a Hub or file host that never answers and
one that answers too much: every call costs one timeout and frees its thread; bodies are capped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from huggingface_hub import constants
from huggingface_hub.inference._providers._common import _fetch_inference_provider_mapping

from bot.catalog import ModelId
from bot.providers.base import ErrorKind, ImageOptions, ProviderError
from bot.providers.flux_dev import FluxDevProvider
from tests.fakes.providers import FakeHub, FakeReplicate
from tests.fakes.silent import SilentServer

HF = "hf_SECRET_test_token_abcdef123456"
DEV = "black-forest-labs/flux-dev"


@pytest.fixture(autouse=True)
def _hub_state(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENDPOINT", "INFERENCE_PROXY_TEMPLATE", "HF_HUB_DISABLE_TELEMETRY"):
        monkeypatch.setattr(constants, name, getattr(constants, name))
    _fetch_inference_provider_mapping.cache_clear()


@pytest.fixture
async def router() -> AsyncIterator[FakeReplicate]:
    async with FakeReplicate(tokens={HF}) as server:
        yield server


def provider(hub_url: str, router_url: str, timeout: float, **kw: int) -> FluxDevProvider:
    return FluxDevProvider(HF, hub_url, router_url, timeout, **kw)


async def failure(p: FluxDevProvider) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await p.generate(ModelId.FLUX_DEV, "a fox", ImageOptions())
    return info.value


async def _until(condition: object, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return bool(condition())  # type: ignore[operator]


async def test_a_hub_that_never_answers_costs_one_timeout_per_call_and_frees_the_thread(
    router: FakeReplicate,
) -> None:
    async with SilentServer() as hub:
        p = provider(hub.url, router.url, timeout=1.0)
        try:
            for call in range(1, 4):
                started = time.monotonic()
                err = await failure(p)
                assert err.kind is ErrorKind.TIMEOUT, err
                assert 0.8 < time.monotonic() - started < 2.5
                assert len(hub.connections) == call  # one mapping look-up per call, nothing retried
                # The look-up's own request gave up too: its thread is free and its socket closed.
                assert await _until(lambda: p.threads.running == 0 and hub.open_connections == 0, 1.5)
        finally:
            await p.aclose()
    assert router.requests == []


async def test_an_output_file_that_never_arrives_costs_one_timeout(router: FakeReplicate) -> None:
    router.behave("stall", key=DEV)
    async with FakeHub() as hub:
        p = provider(hub.url, router.url, timeout=1.0)
        try:
            started = time.monotonic()
            err = await failure(p)
            assert err.kind is ErrorKind.TIMEOUT
            assert time.monotonic() - started < 2.5
            assert await _until(lambda: p.threads.running == 0, 1.5)
        finally:
            await p.aclose()
    assert [r.path for r in router.requests if r.path.startswith("/files/")]  # it did get that far


async def test_an_output_file_of_200_mb_is_cut_at_the_cap(router: FakeReplicate) -> None:
    router.behave("huge", key=DEV, size=200 * 1024 * 1024)
    async with FakeHub() as hub:
        p = provider(hub.url, router.url, timeout=10, max_bytes=2 * 1024 * 1024)
        try:
            started = time.monotonic()
            err = await failure(p)
        finally:
            await p.aclose()
    assert err.kind is ErrorKind.TOO_LARGE and "cap" in err.detail
    assert time.monotonic() - started < 5


async def test_an_output_image_of_144_megapixels_is_refused_from_its_header(router: FakeReplicate) -> None:
    router.behave("bomb", key=DEV, size=12000)
    async with FakeHub() as hub:
        p = provider(hub.url, router.url, timeout=10)
        try:
            err = await failure(p)
        finally:
            await p.aclose()
    assert err.kind is ErrorKind.TOO_LARGE and "pixel" in err.detail
