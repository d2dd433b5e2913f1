"""Pollinations on an injected client with `httpx.MockTransport`: what it sends and how it reads the
answers, without a server (tests/providers/test_pollinations.py runs it against the fake over sockets)."""

from __future__ import annotations

import httpx
import pytest

from bot.catalog import ModelId
from bot.providers.base import ErrorKind, ImageOptions, ProviderError
from bot.providers.pollinations import PollinationsProvider
from tests.fakes.providers import make_image

BASE = "https://pollinations.test"
KEY = "sk_SECRET_pollinations_0123456789"
PNG = make_image((10, 120, 240))


async def test_keyed_request_carries_the_key_safe_mode_and_the_options() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=PNG)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        provider = PollinationsProvider(KEY, BASE, 5, http=http)
        image = await provider.generate(
            ModelId.POLLINATIONS, "a cat / dog?", ImageOptions(width=512, height=256, seed=3, negative_prompt="fog")
        )
    [request] = seen
    assert request.url.raw_path.split(b"?")[0] == b"/image/a%20cat%20%2F%20dog%3F"  # one path segment
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert dict(request.url.params) == {
        "model": "flux",
        "width": "512",
        "height": "256",
        "seed": "3",
        "safe": "true",
        "negative_prompt": "fog",
    }
    assert (image.provider, image.seed, image.prompt_shortened) == ("pollinations", 3, False)


async def test_the_nsfw_500_is_a_refusal_and_other_500s_an_outage() -> None:
    answers = iter(
        [
            httpx.Response(500, json={"error": "Internal Server Error", "message": "NSFW content detected."}),
            httpx.Response(500, json={"error": "Internal Server Error"}),
        ]
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda request: next(answers))) as http:
        provider = PollinationsProvider(None, BASE, 5, http=http)
        kinds = []
        for _ in range(2):
            with pytest.raises(ProviderError) as info:
                await provider.generate(ModelId.POLLINATIONS, "x", ImageOptions())
            kinds.append(info.value.kind)
    assert kinds == [ErrorKind.REFUSED, ErrorKind.UNAVAILABLE]


async def test_a_read_timeout_is_a_timeout_and_the_key_never_shows() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout(f"timed out talking to {request.url} with {KEY}", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        provider = PollinationsProvider(KEY, BASE, 5, http=http)
        with pytest.raises(ProviderError) as info:
            await provider.generate(ModelId.POLLINATIONS, "x", ImageOptions())
        await provider.aclose()
        assert not http.is_closed  # the caller's client: the caller closes it
    assert info.value.kind is ErrorKind.TIMEOUT and KEY not in str(info.value)
