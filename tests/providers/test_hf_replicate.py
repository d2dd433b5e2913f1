"""FLUX.1 [dev] (FluxDevProvider) and FLUX 1.1 [pro] (FluxProProvider) with the real huggingface_hub
and httpx clients against fake Hub/router/Replicate.

Three servers: a fake Hub (provider mapping), a fake HF router (Replicate proxy under /replicate) and a
fake direct Replicate API. FLUX.1-dev images are green, schnell yellow, 1.1-pro magenta; the direct
Replicate fake paints pro images cyan so a test can tell which route produced an image.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from huggingface_hub import constants
from huggingface_hub.inference._providers._common import _fetch_inference_provider_mapping

from bot.catalog import ModelId
from bot.providers.base import ErrorKind, ImageOptions, ProviderError
from bot.providers.flux_dev import DEV_REPO, SCHNELL_REPO, FluxDevProvider
from bot.providers.flux_pro import PRO_MODEL, FluxProProvider
from bot.safety import SafetyLevel
from bot.services.attempts import failed_attempt
from tests.fakes.providers import COG_FLUX_NSFW, REPLICATE_E005, FakeHub, FakeReplicate

HF = "hf_SECRET_test_token_abcdef123456"
R8 = "r8_SECRET_replicate_token_987654"
DEV = "black-forest-labs/flux-dev"
SCHNELL = "black-forest-labs/flux-schnell"
DIRECT_PRO_COLOR = (20, 200, 220)

DEV_INPUTS = {
    "prompt",
    "width",
    "height",
    "num_inference_steps",
    "guidance_scale",
    "seed",
    "aspect_ratio",
    "disable_safety_checker",
}
SCHNELL_INPUTS = {"prompt", "width", "height", "num_inference_steps", "seed", "aspect_ratio", "disable_safety_checker"}
PRO_INPUTS = {"prompt", "aspect_ratio", "width", "height", "seed", "output_format", "safety_tolerance"}


@dataclass
class Flux:
    """Both FLUX adapters from one set of keys, as bot.app builds them; each call goes to the one
    that serves the model."""

    dev: FluxDevProvider
    pro: FluxProProvider

    def for_model(self, model: ModelId) -> FluxDevProvider | FluxProProvider:
        return self.pro if model is ModelId.FLUX_PRO else self.dev

    def available(self, model: ModelId) -> bool:
        return self.dev.available(model) or self.pro.available(model)

    async def aclose(self) -> None:
        await self.dev.aclose()
        await self.pro.aclose()


def flux(
    hf: str | None,
    r8: str | None,
    hub_url: str,
    router_url: str,
    replicate_url: str,
    timeout: float,
    safety: SafetyLevel = SafetyLevel.STANDARD,
) -> Flux:
    pro = FluxProProvider(hf, r8, router_url, replicate_url, timeout, safety=safety)
    pro.poll_interval = 0.05
    return Flux(FluxDevProvider(hf, hub_url, router_url, timeout), pro)


@dataclass
class Fakes:
    hub: FakeHub
    router: FakeReplicate
    replicate: FakeReplicate

    def provider(
        self,
        hf: str | None = HF,
        r8: str | None = None,
        timeout: float = 10,
        hub: FakeHub | None = None,
        safety: SafetyLevel = SafetyLevel.STANDARD,
    ) -> Flux:
        return flux(hf, r8, (hub or self.hub).url, self.router.url, self.replicate.url, timeout, safety)


@pytest.fixture
async def fakes(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fakes]:
    # The provider rewrites huggingface_hub's module constants: put them back after each test.
    for name in ("ENDPOINT", "INFERENCE_PROXY_TEMPLATE", "HF_HUB_DISABLE_TELEMETRY"):
        monkeypatch.setattr(constants, name, getattr(constants, name))
    _fetch_inference_provider_mapping.cache_clear()
    async with (
        FakeHub() as hub,
        FakeReplicate(tokens={HF}) as router,
        FakeReplicate(tokens={R8}, colors={PRO_MODEL: DIRECT_PRO_COLOR}) as replicate,
    ):
        yield Fakes(hub, router, replicate)
    _fetch_inference_provider_mapping.cache_clear()


async def generate(provider: Flux, model: ModelId, prompt: str = "a fox in snow", **options: object):
    try:
        return await provider.for_model(model).generate(model, prompt, ImageOptions(**options))  # type: ignore[arg-type]
    finally:
        await provider.aclose()


async def failure(provider: Flux, model: ModelId, **options: object) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await generate(provider, model, **options)
    err = info.value
    assert err.provider == "hf-replicate"
    assert err.latency_ms is not None and err.latency_ms >= 0
    return err


# -- FLUX.1 [dev] ----------------------------------------------------------------------------------


async def test_dev_goes_hub_mapping_then_router_with_only_dev_parameters(fakes: Fakes) -> None:
    image = await generate(
        fakes.provider(), ModelId.FLUX_DEV, width=1000, height=700, seed=42, negative_prompt="blurry"
    )

    assert (image.provider, image.model, image.mime_type) == ("hf-replicate", DEV_REPO, "image/png")
    assert fakes.router.made_by(image.data, DEV)

    [lookup] = fakes.hub.requests
    assert lookup.path == f"/api/models/{DEV_REPO}"
    assert lookup.query == {"expand": "inferenceProviderMapping"}

    [post] = fakes.router.predictions_for(DEV)
    assert post.path == f"/replicate/v1/models/{DEV}/predictions"
    assert post.header("authorization") == f"Bearer {HF}"
    assert post.header("prefer") == "wait"
    sent = post.json["input"]
    assert set(sent) == DEV_INPUTS
    assert sent == {
        "prompt": "a fox in snow",
        "width": 992,
        "height": 704,
        "num_inference_steps": 28,
        "guidance_scale": 3.5,
        "seed": 42,
        "aspect_ratio": "3:2",
        "disable_safety_checker": False,
    }  # no negative_prompt: replicate/cog-flux's FLUX.1 [dev] has no such input
    assert image.seed == 42 and (image.width, image.height) != (0, 0)
    assert fakes.router.paths[-1].startswith("/files/")  # the output was downloaded from the fake
    assert fakes.replicate.requests == []  # an HF token never goes to Replicate directly
    assert fakes.router.predictions_for(SCHNELL) == []


async def test_dev_configures_hub_and_router_and_switches_telemetry_off(fakes: Fakes) -> None:
    await generate(fakes.provider(), ModelId.FLUX_DEV)
    assert fakes.hub.url == constants.ENDPOINT
    assert fakes.router.url + "/{provider}" == constants.INFERENCE_PROXY_TEMPLATE
    assert constants.HF_HUB_DISABLE_TELEMETRY is True
    # With telemetry on, huggingface_hub fetches {ENDPOINT}/api/agent-harnesses while building headers.
    assert fakes.hub.requests_to("agent-harnesses") == []


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"detail": "Model access denied. Upgrade to PRO."}),  # seed 001
        (403, {"detail": "You do not have access to this model"}),
        (404, {"detail": "Not found"}),
    ],
)
async def test_dev_without_access_is_downgraded_once_to_schnell(fakes: Fakes, status: int, body: dict) -> None:
    fakes.router.behave("status", key=DEV, status=status, body=body)

    image = await generate(fakes.provider(), ModelId.FLUX_DEV, seed=5, negative_prompt="blurry")

    assert image.model == SCHNELL_REPO and "FLUX.1-schnell" in image.model
    assert fakes.router.made_by(image.data, SCHNELL)
    assert len(fakes.router.predictions_for(DEV)) == 1
    [post] = fakes.router.predictions_for(SCHNELL)
    sent = post.json["input"]
    assert set(sent) == SCHNELL_INPUTS  # no guidance, no negative prompt
    assert sent["num_inference_steps"] == 4 and sent["seed"] == 5
    assert fakes.hub.paths == [f"/api/models/{DEV_REPO}", f"/api/models/{SCHNELL_REPO}"]


async def test_gated_or_hidden_dev_on_the_hub_is_downgraded(fakes: Fakes) -> None:
    fakes.hub.behave(
        "status",
        key=DEV_REPO,
        status=404,
        body={"error": "Repository not found"},
        headers={"X-Error-Code": "RepoNotFound"},
    )
    image = await generate(fakes.provider(), ModelId.FLUX_DEV)
    assert image.model == SCHNELL_REPO
    assert fakes.router.predictions_for(DEV) == []


async def test_dev_bad_key_is_auth_and_schnell_is_not_tried(fakes: Fakes) -> None:
    err = await failure(fakes.provider(hf="hf_WRONG_token_that_router_rejects"), ModelId.FLUX_DEV)
    assert (err.kind, err.status, err.model) == (ErrorKind.AUTH, 401, DEV_REPO)
    assert "valid authentication token" in err.detail
    assert fakes.router.predictions_for(SCHNELL) == []


async def test_dev_and_schnell_both_refused_reports_schnell(fakes: Fakes) -> None:
    fakes.router.behave("status", key=DEV, status=403, body={"detail": "no access to dev"})
    fakes.router.behave("status", key=SCHNELL, status=403, body={"detail": "no access to schnell either"})
    err = await failure(fakes.provider(), ModelId.FLUX_DEV)
    assert (err.kind, err.status, err.model) == (ErrorKind.NO_ACCESS, 403, SCHNELL_REPO)
    assert "schnell either" in err.detail


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (402, ErrorKind.RATE_LIMITED),
        (429, ErrorKind.RATE_LIMITED),
        (422, ErrorKind.BAD_REQUEST),
        (500, ErrorKind.UNAVAILABLE),
        (503, ErrorKind.UNAVAILABLE),
    ],
)
async def test_dev_other_statuses_map_without_downgrade(fakes: Fakes, status: int, kind: ErrorKind) -> None:
    fakes.router.behave("status", key=DEV, status=status)
    err = await failure(fakes.provider(), ModelId.FLUX_DEV)
    assert (err.kind, err.status, err.model) == (kind, status, DEV_REPO)
    assert f"fake replicate error {status}" in err.detail
    assert fakes.router.predictions_for(SCHNELL) == []


async def test_dev_slow_router_times_out_close_to_the_deadline(fakes: Fakes) -> None:
    fakes.router.behave("delay", key=DEV, seconds=3)
    started = time.monotonic()
    err = await failure(fakes.provider(timeout=0.5), ModelId.FLUX_DEV)
    assert err.kind is ErrorKind.TIMEOUT
    assert time.monotonic() - started < 1.5


async def test_dev_slow_hub_lookup_times_out_too(fakes: Fakes) -> None:
    # The mapping lookup has no timeout of its own in huggingface_hub: only our deadline stops it.
    fakes.hub.behave("delay", key=DEV_REPO, seconds=3)
    started = time.monotonic()
    err = await failure(fakes.provider(timeout=0.5), ModelId.FLUX_DEV)
    assert err.kind is ErrorKind.TIMEOUT
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("mode", ["garbage", "empty"])
async def test_dev_undecodable_output_is_bad_output(fakes: Fakes, mode: str) -> None:
    fakes.router.behave(mode, key=DEV)
    err = await failure(fakes.provider(), ModelId.FLUX_DEV)
    assert (err.kind, err.model) == (ErrorKind.BAD_OUTPUT, DEV_REPO)


@pytest.mark.parametrize("mode", ["failed", "no_output"])
async def test_dev_prediction_without_output_is_timeout(fakes: Fakes, mode: str) -> None:
    # huggingface_hub turns a prediction without output into a builtin TimeoutError.
    fakes.router.behave(mode, key=DEV)
    err = await failure(fakes.provider(), ModelId.FLUX_DEV)
    assert err.kind is ErrorKind.TIMEOUT
    assert "no output" in err.detail


async def test_dev_unreachable_hub_is_unavailable(fakes: Fakes, closed_port_url: str) -> None:
    provider = flux(HF, None, closed_port_url, fakes.router.url, fakes.replicate.url, 5)
    err = await failure(provider, ModelId.FLUX_DEV)
    assert err.kind is ErrorKind.UNAVAILABLE
    assert "ConnectError" in err.detail  # httpx2's, not httpx's: huggingface_hub does not wrap it


async def test_dev_mapping_cache_follows_the_configured_hub(fakes: Fakes) -> None:
    await generate(fakes.provider(), ModelId.FLUX_DEV)
    await generate(fakes.provider(), ModelId.FLUX_DEV)
    assert len(fakes.hub.requests) == 1  # cached per repo by huggingface_hub

    async with FakeHub() as other_hub:
        await generate(fakes.provider(hub=other_hub), ModelId.FLUX_DEV)
        assert other_hub.paths == [f"/api/models/{DEV_REPO}"]  # a new Hub is asked, not the old cache


async def test_dev_failed_lookup_is_not_cached(fakes: Fakes) -> None:
    fakes.hub.behave("status", key=DEV_REPO, status=503)
    fakes.hub.behave("status", key=SCHNELL_REPO, status=503)
    err = await failure(fakes.provider(), ModelId.FLUX_DEV)
    assert err.kind is ErrorKind.UNAVAILABLE
    fakes.hub.reset()
    image = await generate(fakes.provider(), ModelId.FLUX_DEV)
    assert image.model == DEV_REPO


async def test_dev_needs_an_hf_token(fakes: Fakes) -> None:
    provider = fakes.provider(hf=None, r8=R8)
    assert not provider.available(ModelId.FLUX_DEV)
    err = await failure(provider, ModelId.FLUX_DEV)
    assert err.kind is ErrorKind.NOT_CONFIGURED


async def test_dev_token_that_is_not_an_hf_token_is_refused_locally(fakes: Fakes) -> None:
    # huggingface_hub would send a non-hf_ key straight to api.replicate.com.
    err = await failure(fakes.provider(hf="r8_looks_like_replicate"), ModelId.FLUX_DEV)
    assert err.kind is ErrorKind.AUTH
    assert fakes.hub.requests == [] and fakes.router.requests == []


# -- FLUX 1.1 [pro] --------------------------------------------------------------------------------


async def test_pro_with_replicate_token_goes_direct(fakes: Fakes) -> None:
    image = await generate(
        fakes.provider(r8=R8), ModelId.FLUX_PRO, aspect_ratio="16:9", seed=9, negative_prompt="ignored by pro"
    )

    assert (image.provider, image.model) == ("hf-replicate", PRO_MODEL)
    assert fakes.replicate.made_by(image.data, PRO_MODEL)
    [post] = fakes.replicate.predictions_for(PRO_MODEL)
    assert post.path == f"/v1/models/{PRO_MODEL}/predictions"
    assert post.header("authorization") == f"Bearer {R8}"
    assert post.header("prefer") == "wait"
    assert post.json == {
        "input": {
            "prompt": "a fox in snow",
            "aspect_ratio": "16:9",
            "seed": 9,
            "output_format": "png",
            "safety_tolerance": 2,
        }
    }
    assert fakes.router.requests == [] and fakes.hub.requests == []


async def test_pro_explicit_size_is_custom_in_multiples_of_32_within_limits(fakes: Fakes) -> None:
    await generate(fakes.provider(r8=R8), ModelId.FLUX_PRO, width=1000, height=3000)
    sent = fakes.replicate.predictions_for(PRO_MODEL)[0].json["input"]
    assert set(sent) <= PRO_INPUTS
    assert (sent["aspect_ratio"], sent["width"], sent["height"]) == ("custom", 992, 1440)
    assert "seed" not in sent


async def test_pro_without_replicate_token_uses_the_hf_router(fakes: Fakes) -> None:
    image = await generate(fakes.provider(hf=HF, r8=None), ModelId.FLUX_PRO)

    assert image.model == PRO_MODEL
    assert fakes.router.made_by(image.data, PRO_MODEL)
    [post] = fakes.router.predictions_for(PRO_MODEL)
    assert post.path == f"/replicate/v1/models/{PRO_MODEL}/predictions"
    assert post.header("authorization") == f"Bearer {HF}"
    assert fakes.replicate.requests == [] and fakes.hub.requests == []


async def test_pro_polls_an_unfinished_prediction(fakes: Fakes) -> None:
    fakes.replicate.behave("processing", key=PRO_MODEL, polls=2)
    image = await generate(fakes.provider(r8=R8), ModelId.FLUX_PRO)
    assert fakes.replicate.made_by(image.data, PRO_MODEL)
    polls = [r for r in fakes.replicate.requests if r.path.startswith("/v1/predictions/")]
    assert len(polls) == 3  # processing, processing, succeeded
    assert all(r.header("authorization") == f"Bearer {R8}" for r in polls)


async def test_pro_polling_stops_at_the_deadline(fakes: Fakes) -> None:
    fakes.replicate.behave("processing", key=PRO_MODEL, polls=1000)
    started = time.monotonic()
    err = await failure(fakes.provider(r8=R8, timeout=0.5), ModelId.FLUX_PRO)
    assert err.kind is ErrorKind.TIMEOUT
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, ErrorKind.AUTH),
        (403, ErrorKind.NO_ACCESS),
        (402, ErrorKind.RATE_LIMITED),
        (429, ErrorKind.RATE_LIMITED),
        (422, ErrorKind.BAD_REQUEST),
        (500, ErrorKind.UNAVAILABLE),
    ],
)
async def test_pro_statuses_map_to_error_kinds(fakes: Fakes, status: int, kind: ErrorKind) -> None:
    fakes.replicate.behave("status", key=PRO_MODEL, status=status)
    err = await failure(fakes.provider(r8=R8), ModelId.FLUX_PRO)
    assert (err.kind, err.status, err.model) == (kind, status, PRO_MODEL)


async def test_pro_wrong_replicate_token_is_auth(fakes: Fakes) -> None:
    err = await failure(fakes.provider(r8="r8_wrong"), ModelId.FLUX_PRO)
    assert (err.kind, err.status) == (ErrorKind.AUTH, 401)


@pytest.mark.parametrize(
    ("mode", "detail"), [("failed", "model crashed"), ("garbage", "not an image"), ("empty", "empty")]
)
async def test_pro_without_an_image_is_bad_output(fakes: Fakes, mode: str, detail: str) -> None:
    fakes.replicate.behave(mode, key=PRO_MODEL)
    err = await failure(fakes.provider(r8=R8), ModelId.FLUX_PRO)
    assert err.kind is ErrorKind.BAD_OUTPUT
    assert detail in err.detail


async def test_pro_slow_api_times_out(fakes: Fakes) -> None:
    fakes.replicate.behave("delay", key=PRO_MODEL, seconds=3)
    started = time.monotonic()
    err = await failure(fakes.provider(r8=R8, timeout=0.5), ModelId.FLUX_PRO)
    assert err.kind is ErrorKind.TIMEOUT
    assert time.monotonic() - started < 1.5


async def test_pro_unreachable_is_unavailable(fakes: Fakes, closed_port_url: str) -> None:
    provider = flux(None, R8, fakes.hub.url, fakes.router.url, closed_port_url, 5)
    err = await failure(provider, ModelId.FLUX_PRO)
    assert err.kind is ErrorKind.UNAVAILABLE


# -- keys, availability ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", [ModelId.FLUX_DEV, ModelId.FLUX_PRO])
async def test_keys_echoed_upstream_never_reach_errors_or_logs(
    fakes: Fakes, caplog: pytest.LogCaptureFixture, model: ModelId
) -> None:
    caplog.set_level(logging.DEBUG)
    # Each adapter masks every key it holds: [dev] holds only the HF token, [pro] both.
    held = (HF,) if model is ModelId.FLUX_DEV else (HF, R8)
    for fake in (fakes.router, fakes.replicate):
        fake.behave("status", status=401, body={"detail": "bad tokens " + " ".join(held)})
    err = await failure(fakes.provider(hf=HF, r8=R8), model)
    assert err.kind is ErrorKind.AUTH
    assert "***" in err.detail
    failed_attempt(err, time.monotonic())  # the chain's one log line for a provider failure
    assert "provider failed: provider=hf-replicate" in caplog.text
    for secret in held:
        assert secret not in str(err) and secret not in repr(err)
        assert secret not in caplog.text


@pytest.mark.parametrize(
    ("hf", "r8", "dev", "pro"),
    [(None, None, False, False), (HF, None, True, True), (None, R8, False, True), (HF, R8, True, True)],
)
def test_availability_follows_the_keys(hf: str | None, r8: str | None, dev: bool, pro: bool) -> None:
    provider = flux(hf, r8, "http://127.0.0.1:9", "http://127.0.0.1:9", "http://127.0.0.1:9", 5)
    assert provider.available(ModelId.FLUX_DEV) is dev
    assert provider.available(ModelId.FLUX_PRO) is pro
    assert not provider.available(ModelId.GEMINI_FLASH)
    # One name for both (bot.catalog's ModelSpec.provider), one model each.
    assert provider.dev.name == provider.pro.name == "hf-replicate"
    assert (provider.dev.models, provider.pro.models) == ({ModelId.FLUX_DEV}, {ModelId.FLUX_PRO})
    assert not provider.dev.available(ModelId.FLUX_PRO) and not provider.pro.available(ModelId.FLUX_DEV)


# -- content safety ---------------------------------------------------------------------------------


async def test_dev_nsfw_failure_is_a_refusal_and_schnell_is_not_asked(fakes: Fakes) -> None:
    # huggingface_hub alone would report this failed prediction as "timed out".
    fakes.router.behave("nsfw", key=DEV)
    err = await failure(fakes.provider(), ModelId.FLUX_DEV)
    assert (err.kind, err.model) == (ErrorKind.REFUSED, DEV_REPO)
    assert err.detail == COG_FLUX_NSFW
    assert fakes.router.predictions_for(SCHNELL) == []
    [post] = fakes.router.predictions_for(DEV)
    assert post.json["input"]["disable_safety_checker"] is False


async def test_dev_other_failed_prediction_is_still_not_a_refusal(fakes: Fakes) -> None:
    fakes.router.behave("failed", key=DEV)
    err = await failure(fakes.provider(), ModelId.FLUX_DEV)
    assert err.kind is ErrorKind.TIMEOUT


async def test_dev_router_error_naming_the_filter_is_a_refusal(fakes: Fakes) -> None:
    fakes.router.behave("status", key=DEV, status=422, body={"detail": REPLICATE_E005})
    err = await failure(fakes.provider(), ModelId.FLUX_DEV)
    assert (err.kind, err.status) == (ErrorKind.REFUSED, 422)
    assert fakes.router.predictions_for(SCHNELL) == []


@pytest.mark.parametrize("route", ["direct", "router"])
async def test_pro_sensitive_failure_is_a_refusal(fakes: Fakes, route: str) -> None:
    fake = fakes.replicate if route == "direct" else fakes.router
    fake.behave("nsfw", key=PRO_MODEL)
    provider = fakes.provider(r8=R8) if route == "direct" else fakes.provider(hf=HF)
    err = await failure(provider, ModelId.FLUX_PRO)
    assert (err.kind, err.model) == (ErrorKind.REFUSED, PRO_MODEL)
    assert "flagged as sensitive" in err.detail and "E005" in err.detail


@pytest.mark.parametrize("message", ["NSFW content detected", "Request Moderated", "Content Moderated"])
async def test_pro_other_filter_messages_are_refusals(fakes: Fakes, message: str) -> None:
    fakes.replicate.behave("nsfw", key=PRO_MODEL, body=message)
    err = await failure(fakes.provider(r8=R8), ModelId.FLUX_PRO)
    assert err.kind is ErrorKind.REFUSED and err.detail.endswith(message)


@pytest.mark.parametrize(("level", "tolerance"), [(SafetyLevel.STANDARD, 2), (SafetyLevel.STRICT, 1)])
async def test_pro_safety_tolerance_follows_the_level(fakes: Fakes, level: SafetyLevel, tolerance: int) -> None:
    await generate(fakes.provider(r8=R8, safety=level), ModelId.FLUX_PRO)
    [post] = fakes.replicate.predictions_for(PRO_MODEL)
    assert post.json["input"]["safety_tolerance"] == tolerance
