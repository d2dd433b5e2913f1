"""The Replicate adapters (FLUX 1.1 [pro], Kontext, Real-ESRGAN) on an injected client with
`httpx.MockTransport`: the wire protocol and its edge cases without a server. The end-to-end path
(real sockets, the fake Replicate) is tests/providers/test_hf_replicate.py and test_editing_providers.py."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from bot.catalog import ModelId
from bot.providers.base import ErrorKind, ImageOptions, ProviderError
from bot.providers.flux_pro import PRO_MODEL, FluxProProvider
from bot.providers.replicate_kontext import KontextEditor
from bot.providers.upscaler import RealEsrganUpscaler
from tests.fakes.providers import REPLICATE_E005, make_image

API = "https://api.replicate.test"
FILES = "https://delivery.replicate.test"
ROUTER = "https://router.hf.test"
HF = "hf_SECRET_mock_token_0123456789"
R8 = "r8_SECRET_mock_token_9876543210"
PNG = make_image((200, 30, 30))

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def pro(http: httpx.AsyncClient, hf: str | None = None, r8: str | None = R8) -> FluxProProvider:
    provider = FluxProProvider(hf, r8, ROUTER, API, 5, http=http)
    provider.poll_interval = 0
    return provider


def prediction(status: str, **fields: object) -> httpx.Response:
    return httpx.Response(201, json={"id": "p1", "status": status, **fields})


async def test_pro_polls_a_pending_prediction_and_downloads_the_output_without_the_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        url = str(request.url)
        if request.method == "POST":
            return prediction("starting", urls={"get": "https://api.replicate.com/v1/predictions/p1"})
        if url == f"{API}/v1/predictions/p1":  # Replicate's public host, rewritten to the configured base
            return prediction("succeeded", output=f"{FILES}/out.png")
        if url == f"{FILES}/out.png":
            return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
        return httpx.Response(404)

    async with client(handler) as http:
        image = await pro(http).generate(ModelId.FLUX_PRO, "a red square", ImageOptions(seed=9))

    assert (image.provider, image.model, image.seed, image.width) == ("hf-replicate", PRO_MODEL, 9, 64)
    post, poll, download = seen
    assert str(post.url) == f"{API}/v1/models/{PRO_MODEL}/predictions"
    assert post.headers["Prefer"] == "wait" and post.headers["Authorization"] == f"Bearer {R8}"
    assert json.loads(post.content)["input"] == {
        "prompt": "a red square",
        "seed": 9,
        "output_format": "png",
        "safety_tolerance": 2,
        "aspect_ratio": "1:1",
    }
    assert poll.headers["Authorization"] == f"Bearer {R8}"
    assert "Authorization" not in download.headers  # output files are public: the key stays with the API


async def test_pro_without_a_replicate_token_goes_through_the_hf_router() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return prediction("succeeded", output=[f"{FILES}/out.png"])
        return httpx.Response(200, content=PNG)

    async with client(handler) as http:
        await pro(http, hf=HF, r8=None).generate(ModelId.FLUX_PRO, "x", ImageOptions())
    assert str(seen[0].url) == f"{ROUTER}/replicate/v1/models/{PRO_MODEL}/predictions"
    assert seen[0].headers["Authorization"] == f"Bearer {HF}"


async def test_a_content_filter_failure_is_a_refusal_and_nothing_is_downloaded() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return prediction("failed", error=REPLICATE_E005)

    async with client(handler) as http:
        with pytest.raises(ProviderError) as info:
            await pro(http).generate(ModelId.FLUX_PRO, "x", ImageOptions())
    assert (info.value.kind, info.value.detail) == (ErrorKind.REFUSED, REPLICATE_E005)
    assert seen == ["POST"]


async def test_a_poll_url_on_another_host_is_not_sent_the_key() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return prediction("processing", urls={"get": "https://evil.test/v1/predictions/p1"})

    async with client(handler) as http:
        with pytest.raises(ProviderError) as info:
            await pro(http).generate(ModelId.FLUX_PRO, "x", ImageOptions())
    assert info.value.kind is ErrorKind.BAD_OUTPUT and "unexpected host" in info.value.detail
    assert seen == [f"{API}/v1/models/{PRO_MODEL}/predictions"]


async def test_every_key_the_adapter_holds_is_masked_in_an_echoed_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"detail": f"bad tokens {HF} {R8}"})

    async with client(handler) as http:
        with pytest.raises(ProviderError) as info:
            await pro(http, hf=HF, r8=R8).generate(ModelId.FLUX_PRO, "x", ImageOptions())
    err = info.value
    assert (err.kind, err.status) == (ErrorKind.AUTH, 401)
    assert HF not in str(err) and R8 not in str(err) and err.detail.count("***") == 2


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (httpx.Response(403, text="this model needs a subscription"), ErrorKind.NO_ACCESS),
        (httpx.Response(429), ErrorKind.RATE_LIMITED),
        (httpx.Response(503), ErrorKind.UNAVAILABLE),
        (httpx.Response(201, text="<html>not json</html>"), ErrorKind.BAD_OUTPUT),
        (httpx.Response(201, json={"status": "succeeded", "output": None}), ErrorKind.BAD_OUTPUT),
    ],
)
async def test_prediction_answers_map_to_error_kinds(answer: httpx.Response, kind: ErrorKind) -> None:
    async with client(lambda request: answer) as http:
        with pytest.raises(ProviderError) as info:
            await pro(http).generate(ModelId.FLUX_PRO, "x", ImageOptions())
    assert info.value.kind is kind


async def test_a_transport_error_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with client(handler) as http:
        with pytest.raises(ProviderError) as info:
            await pro(http).generate(ModelId.FLUX_PRO, "x", ImageOptions())
    assert info.value.kind is ErrorKind.UNAVAILABLE and "ConnectError" in info.value.detail


async def test_the_upscaler_runs_a_pinned_version_and_kontext_an_official_model() -> None:
    posts: list[tuple[str, dict[str, object]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append((str(request.url), json.loads(request.content)))
            return prediction("succeeded", output=f"{FILES}/out.png")
        return httpx.Response(200, content=PNG)

    version = "nightmareai/real-esrgan:" + "ab" * 32
    async with client(handler) as http:
        upscaler = RealEsrganUpscaler(R8, API, 5, model=version, http=http)
        kontext = KontextEditor(R8, API, 5, http=http)
        upscaled = await upscaler.upscale(PNG, "image/png", 2)
        edited = await kontext.edit(PNG, "image/png", "make it blue")
    (up_url, up_body), (edit_url, edit_body) = posts
    assert up_url == f"{API}/v1/predictions" and up_body["version"] == version
    assert edit_url == f"{API}/v1/models/black-forest-labs/flux-kontext-pro/predictions"
    assert "version" not in edit_body
    assert (upscaled.model, edited.model) == ("nightmareai/real-esrgan", "black-forest-labs/flux-kontext-pro")


async def test_an_injected_client_is_left_open_and_an_own_one_is_closed() -> None:
    async with client(lambda request: httpx.Response(500)) as http:
        provider = pro(http)
        await provider.aclose()
        assert not http.is_closed
    own = FluxProProvider(None, R8, ROUTER, API, 5)
    inner = own.runner._http.get()
    await own.aclose()
    assert inner.is_closed
