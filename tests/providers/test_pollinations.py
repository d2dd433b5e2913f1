"""Pollinations against a fake server: keyless vs keyed, parameters, errors, timeouts, no key leaks."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from bot.catalog import ModelId
from bot.providers.base import ErrorKind, ImageOptions, ProviderError
from bot.providers.pollinations import URL_PROMPT_MAX, PollinationsProvider
from bot.services.attempts import failed_attempt
from tests.fakes.providers import FakePollinations

KEY = "pk_SECRET_pollinations_key_123"


@pytest.fixture
async def fake() -> AsyncIterator[FakePollinations]:
    async with FakePollinations() as server:
        yield server


async def generate(provider: PollinationsProvider, prompt: str = "a red fox", **options: object):
    try:
        return await provider.generate(ModelId.POLLINATIONS, prompt, ImageOptions(**options))  # type: ignore[arg-type]
    finally:
        await provider.aclose()


async def failure(provider: PollinationsProvider, **options: object) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await generate(provider, **options)
    err = info.value
    assert err.provider == "pollinations"
    assert err.latency_ms is not None and err.latency_ms >= 0
    return err


async def test_keyless_uses_the_legacy_route_without_auth(fake: FakePollinations) -> None:
    image = await generate(
        PollinationsProvider(None, fake.url, 5), "a red fox", aspect_ratio="16:9", seed=7, negative_prompt="blur"
    )

    assert (image.provider, image.model, image.mime_type) == ("pollinations", "flux", "image/jpeg")
    assert fake.made(image.data)
    [req] = fake.requests
    assert req.method == "GET" and req.path == "/prompt/a red fox"
    assert req.query == {
        "width": "1024",
        "height": "576",
        "seed": "7",
        "model": "flux",
        "nologo": "true",
        "safe": "true",
        "negative_prompt": "blur",  # image.pollinations.ai reads it too (src/params.ts)
    }
    assert req.header("authorization") is None
    assert image.seed == 7


async def test_keyed_uses_the_image_route_with_bearer_and_negative_prompt(fake: FakePollinations) -> None:
    image = await generate(
        PollinationsProvider(KEY, fake.url, 5), width=800, height=600, seed=3, negative_prompt="text, watermark"
    )

    assert fake.made(image.data)
    [req] = fake.requests
    assert req.path == "/image/a red fox"
    assert req.header("authorization") == f"Bearer {KEY}"
    assert req.query == {
        "model": "flux",
        "width": "800",
        "height": "608",
        "seed": "3",
        "safe": "true",
        "negative_prompt": "text, watermark",
    }
    # Pollinations reads "false" as true: flags are omitted, never sent as false.
    assert "false" not in req.raw_path.lower()


async def test_keyed_omits_negative_prompt_when_none_given(fake: FakePollinations) -> None:
    await generate(PollinationsProvider(KEY, fake.url, 5), seed=1)
    assert "negative_prompt" not in fake.requests[0].query


async def test_a_random_seed_is_sent_when_none_is_given(fake: FakePollinations) -> None:
    provider = PollinationsProvider(None, fake.url, 5)
    for _ in range(3):
        await provider.generate(ModelId.POLLINATIONS, "same prompt", ImageOptions())
    await provider.aclose()

    seeds = [int(r.query["seed"]) for r in fake.requests]
    assert len(set(seeds)) == 3, seeds  # Pollinations' own default seed is fixed


async def test_prompt_is_escaped_so_slashes_and_question_marks_survive(fake: FakePollinations) -> None:
    prompt = "кот / dog? 50% & more #1"
    await generate(PollinationsProvider(None, fake.url, 5), prompt)
    assert fake.prompts == [prompt]
    assert fake.requests[0].query["model"] == "flux"  # nothing from the prompt leaked into the query


async def test_keyed_route_without_key_is_refused_by_the_fake(fake: FakePollinations) -> None:
    # The fake itself must insist on the bearer, or the keyed test above proves nothing.
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{fake.url}/image/x")
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ErrorKind.BAD_REQUEST),
        (401, ErrorKind.AUTH),
        (403, ErrorKind.AUTH),
        (402, ErrorKind.RATE_LIMITED),
        (429, ErrorKind.RATE_LIMITED),
        (500, ErrorKind.UNAVAILABLE),
        (503, ErrorKind.UNAVAILABLE),
    ],
)
async def test_http_status_maps_to_error_kind(fake: FakePollinations, status: int, kind: ErrorKind) -> None:
    fake.behave("status", status=status, body={"error": f"nope {status}"})
    err = await failure(PollinationsProvider(None, fake.url, 5))
    assert (err.kind, err.status, err.model) == (kind, status, "flux")
    assert f"nope {status}" in err.detail


async def test_wrong_key_is_auth_and_never_leaks(fake: FakePollinations, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # An upstream that echoes the key back must not get it into our error or logs.
    fake.behave("status", key="image", status=401, body=f"invalid key {KEY}")

    err = await failure(PollinationsProvider(KEY, fake.url, 5))

    assert err.kind is ErrorKind.AUTH
    assert KEY not in str(err) and KEY not in repr(err) and KEY not in err.detail
    assert "***" in err.detail
    failed_attempt(err, time.monotonic())  # the chain's one log line for a provider failure
    assert "provider failed: provider=pollinations" in caplog.text  # logged, just without the key
    assert KEY not in caplog.text


async def test_key_the_server_rejects_is_auth(fake: FakePollinations) -> None:
    fake.tokens = {"pk_the_right_one"}
    err = await failure(PollinationsProvider(KEY, fake.url, 5))
    assert (err.kind, err.status) == (ErrorKind.AUTH, 401)


async def test_slow_upstream_times_out_close_to_the_deadline(fake: FakePollinations) -> None:
    fake.behave("delay", seconds=3)
    started = time.monotonic()
    err = await failure(PollinationsProvider(None, fake.url, 0.5))
    elapsed = time.monotonic() - started
    assert err.kind is ErrorKind.TIMEOUT
    assert elapsed < 1.5, elapsed
    assert 400 <= (err.latency_ms or 0) < 1500


@pytest.mark.parametrize("mode", ["garbage", "empty"])
async def test_a_200_without_an_image_is_bad_output(fake: FakePollinations, mode: str) -> None:
    fake.behave(mode)
    err = await failure(PollinationsProvider(None, fake.url, 5))
    assert err.kind is ErrorKind.BAD_OUTPUT
    assert err.status == 200


async def test_connection_refused_is_unavailable(closed_port_url: str) -> None:
    err = await failure(PollinationsProvider(None, closed_port_url, 5))
    assert err.kind is ErrorKind.UNAVAILABLE


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (None, "https://image.pollinations.ai/prompt/a%20cat"),
        (KEY, "https://gen.pollinations.ai/image/a%20cat"),
    ],
)
async def test_default_base_urls(key: str | None, expected: str) -> None:
    """Without POLLINATIONS_BASE_URL the public hosts are used (checked with a mock transport: no network)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(ProviderError):
            await generate(PollinationsProvider(key, None, 5, http=http), "a cat")
    assert str(seen[0].url).startswith(expected + "?")


def test_always_available_and_serves_only_its_model() -> None:
    provider = PollinationsProvider(None, None, 5)
    assert provider.available(ModelId.POLLINATIONS)
    assert not provider.available(ModelId.FLUX_DEV)
    assert provider.name == "pollinations" and provider.models == {ModelId.POLLINATIONS}


# -- content safety ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, KEY])
async def test_safe_mode_nsfw_answer_is_a_refusal(fake: FakePollinations, key: str | None) -> None:
    fake.behave("nsfw")
    err = await failure(PollinationsProvider(key, fake.url, 5))
    assert (err.kind, err.status) == (ErrorKind.REFUSED, 500)
    assert "NSFW content detected" in err.detail
    assert fake.requests[0].query["safe"] == "true"


async def test_prohibited_content_is_a_refusal_but_other_500s_are_outages(fake: FakePollinations) -> None:
    fake.behave("status", status=500, body={"error": "Internal Server Error", "message": "Content is prohibited"})
    assert (await failure(PollinationsProvider(None, fake.url, 5))).kind is ErrorKind.REFUSED
    fake.behave("status", status=500, body={"error": "Internal Server Error", "message": "Server responded with 502"})
    assert (await failure(PollinationsProvider(None, fake.url, 5))).kind is ErrorKind.UNAVAILABLE


@pytest.mark.parametrize("key", [None, KEY], ids=["keyless", "keyed"])
async def test_a_4000_character_cyrillic_prompt_is_cut_to_fit_the_url(fake: FakePollinations, key: str | None) -> None:
    prompt = ("Старый маяк на скалистом берегу в шторм, " * 100)[:4000]
    assert len(quote(prompt, safe="")) > 20000  # what was sent before: a 24 KB URL
    image = await generate(PollinationsProvider(key, fake.url, 5), prompt)
    [req] = fake.requests
    path = req.raw_path.split("?", 1)[0]
    assert len(path) <= len("/prompt/") + URL_PROMPT_MAX
    assert image.prompt_shortened and fake.made(image.data)
    [sent] = fake.prompts
    assert prompt.startswith(sent) and len(sent) > 200 and not sent.endswith(" ")


async def test_a_prompt_that_fits_is_sent_whole_and_not_marked(fake: FakePollinations) -> None:
    prompt = "кот " * 60
    image = await generate(PollinationsProvider(None, fake.url, 5), prompt)
    assert fake.prompts == [prompt] and not image.prompt_shortened
