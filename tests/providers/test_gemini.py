"""GeminiProvider with the real google-genai client against a fake Gemini API on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator

import pytest

from bot.catalog import ModelId
from bot.providers.base import ErrorKind, ImageOptions, ProviderError, supported_ratio
from bot.providers.gemini import GEMINI_RATIOS, GeminiProvider
from bot.safety import SafetyLevel
from bot.services.attempts import failed_attempt
from tests.fakes.providers import FakeGemini

KEY = "AIzaSy_SECRET_gemini_key_0123456789"
MODEL = "gemini-3.1-flash-image"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(tokens={KEY}) as server:
        yield server


async def generate(provider: GeminiProvider, prompt: str = "a lighthouse at dusk", **options: object):
    try:
        return await provider.generate(ModelId.GEMINI_FLASH, prompt, ImageOptions(**options))  # type: ignore[arg-type]
    finally:
        await provider.aclose()


async def failure(provider: GeminiProvider, **options: object) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await generate(provider, **options)
    err = info.value
    assert (err.provider, err.model) == ("gemini", MODEL)
    assert err.latency_ms is not None and err.latency_ms >= 0
    return err


async def test_success_sends_key_header_modalities_and_ratio_but_no_seed(fake: FakeGemini) -> None:
    image = await generate(GeminiProvider(KEY, MODEL, fake.url, 10), aspect_ratio="16:9", seed=1234)

    assert (image.provider, image.model, image.mime_type) == ("gemini", MODEL, "image/png")
    assert fake.made(image.data)
    [req] = fake.requests
    assert (req.method, req.path) == ("POST", f"/v1/models/{MODEL}:generateContent")
    assert req.header("x-goog-api-key") == KEY
    assert req.query == {} and KEY not in req.raw_path  # the key travels in the header only
    assert req.json["contents"] == [{"role": "user", "parts": [{"text": "a lighthouse at dusk"}]}]
    assert req.json["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": "16:9"},
    }  # no seed: it does not make Gemini's images reproducible, and the caption says Gemini ignores it
    assert image.seed is None and (image.width, image.height) != (0, 0)


async def test_negative_prompt_is_folded_into_the_text(fake: FakeGemini) -> None:
    await generate(GeminiProvider(KEY, MODEL, fake.url, 10), "a cat", negative_prompt="dogs, text")
    body = fake.requests[0].json
    assert body["contents"][0]["parts"][0]["text"] == "a cat\n\nAvoid: dogs, text"
    assert "negative" not in json.dumps(body).lower()  # Gemini has no such parameter
    assert "seed" not in body["generationConfig"]


@pytest.mark.parametrize(
    ("options", "ratio"),
    [
        ({}, "1:1"),
        ({"aspect_ratio": "3:2"}, "3:2"),
        ({"aspect_ratio": "9:21"}, "9:16"),  # Gemini has no 9:21: the nearest supported one
        ({"width": 1000, "height": 400}, "21:9"),
        ({"width": 768, "height": 1024}, "3:4"),
    ],
)
def test_aspect_ratio_is_the_nearest_supported(options: dict[str, object], ratio: str) -> None:
    assert supported_ratio(ImageOptions(**options), GEMINI_RATIOS) == ratio  # type: ignore[arg-type]


async def test_only_the_given_key_and_base_url_are_used(
    fake: FakeGemini, monkeypatch: pytest.MonkeyPatch, closed_port_url: str
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "env_key_must_not_be_used")
    monkeypatch.setenv("GEMINI_API_KEY", "env_key_must_not_be_used")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", closed_port_url)
    monkeypatch.setenv("GOOGLE_GENAI_API_VERSION", "v1alpha")

    keyless = GeminiProvider(None, MODEL, fake.url, 10)
    assert not keyless.available(ModelId.GEMINI_FLASH)
    with pytest.raises(ProviderError) as info:
        await generate(keyless)
    assert info.value.kind is ErrorKind.NOT_CONFIGURED
    assert fake.requests == []

    image = await generate(GeminiProvider(KEY, MODEL, fake.url, 10))
    assert fake.made(image.data)
    [req] = fake.requests
    assert req.header("x-goog-api-key") == KEY
    assert req.path.startswith("/v1/models/")  # the pinned version, not the env's


async def test_api_version_can_be_pinned_to_v1beta(fake: FakeGemini) -> None:
    await generate(GeminiProvider(KEY, MODEL, fake.url, 10, api_version="v1beta"))
    assert fake.paths == [f"/v1beta/models/{MODEL}:generateContent"]


async def test_wrong_key_is_auth_and_never_leaks(fake: FakeGemini, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "AIzaSy_WRONG_key_that_must_not_leak"
    err = await failure(GeminiProvider(wrong, MODEL, fake.url, 10))

    # Gemini answers a bad key with 400 INVALID_ARGUMENT / API_KEY_INVALID, not 401.
    assert (err.kind, err.status) == (ErrorKind.AUTH, 400)
    assert "API key not valid" in err.detail
    failed_attempt(err, time.monotonic())  # the chain's one log line for a provider failure
    assert "provider failed: provider=gemini" in caplog.text
    assert wrong not in str(err) and wrong not in caplog.text


async def test_key_echoed_by_upstream_is_redacted(fake: FakeGemini, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.behave(
        "status",
        status=403,
        body={"error": {"code": 403, "message": f"key {KEY} is blocked", "status": "PERMISSION_DENIED"}},
    )
    err = await failure(GeminiProvider(KEY, MODEL, fake.url, 10))
    assert err.kind is ErrorKind.AUTH
    assert "***" in err.detail
    failed_attempt(err, time.monotonic())
    assert "provider failed: provider=gemini" in caplog.text
    assert KEY not in str(err) and KEY not in caplog.text


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, ErrorKind.AUTH),
        (404, ErrorKind.BAD_REQUEST),
        (429, ErrorKind.RATE_LIMITED),
        (500, ErrorKind.UNAVAILABLE),
        (503, ErrorKind.UNAVAILABLE),
    ],
)
async def test_http_status_maps_to_error_kind(fake: FakeGemini, status: int, kind: ErrorKind) -> None:
    fake.behave("status", key=MODEL, status=status)
    err = await failure(GeminiProvider(KEY, MODEL, fake.url, 10))
    assert (err.kind, err.status) == (kind, status)
    assert f"fake gemini error {status}" in err.detail


async def test_unsupported_modality_model_is_bad_request(fake: FakeGemini) -> None:
    fake.behave(
        "status",
        status=400,
        body={
            "error": {
                "code": 400,
                "status": "INVALID_ARGUMENT",
                "message": "The requested combination of response modalities (TEXT,IMAGE) is not supported.",
            }
        },
    )
    err = await failure(GeminiProvider(KEY, MODEL, fake.url, 10))
    assert (err.kind, err.status) == (ErrorKind.BAD_REQUEST, 400)


async def test_slow_upstream_times_out_close_to_the_deadline(fake: FakeGemini) -> None:
    fake.behave("delay", seconds=3)
    started = time.monotonic()
    err = await failure(GeminiProvider(KEY, MODEL, fake.url, 0.5))
    assert err.kind is ErrorKind.TIMEOUT
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("mode", "detail"),
    [
        ("garbage", "not an image"),
        ("empty", "no candidates"),
        ("no_image", "Here is the picture"),
    ],
)
async def test_answers_without_a_decodable_image_are_bad_output(fake: FakeGemini, mode: str, detail: str) -> None:
    fake.behave(mode)
    err = await failure(GeminiProvider(KEY, MODEL, fake.url, 10))
    assert err.kind is ErrorKind.BAD_OUTPUT
    assert detail in err.detail


async def test_non_json_answer_is_bad_output(fake: FakeGemini) -> None:
    fake.behave("status", status=200, body="<html>captive portal</html>")
    err = await failure(GeminiProvider(KEY, MODEL, fake.url, 10))
    assert err.kind is ErrorKind.BAD_OUTPUT


async def test_connection_refused_is_unavailable_without_hidden_retry(closed_port_url: str) -> None:
    # google-genai sleeps 1-10 s and retries on connection errors unless retry options are explicit.
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await generate(GeminiProvider(KEY, MODEL, closed_port_url, 20))
    assert info.value.kind is ErrorKind.UNAVAILABLE
    assert time.monotonic() - started < 1.0


def test_availability_and_identity() -> None:
    provider = GeminiProvider(KEY, MODEL, "http://127.0.0.1:9", 5)
    assert provider.name == "gemini" and provider.models == {ModelId.GEMINI_FLASH}
    assert provider.available(ModelId.GEMINI_FLASH)
    assert not provider.available(ModelId.FLUX_DEV)
    assert not GeminiProvider("", MODEL, "http://127.0.0.1:9", 5).available(ModelId.GEMINI_FLASH)


# -- content safety ---------------------------------------------------------------------------------

CATEGORIES = [
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
]


@pytest.mark.parametrize(
    ("level", "threshold"),
    [(SafetyLevel.STANDARD, "BLOCK_MEDIUM_AND_ABOVE"), (SafetyLevel.STRICT, "BLOCK_LOW_AND_ABOVE")],
)
async def test_safety_settings_are_sent_for_every_category(
    fake: FakeGemini, level: SafetyLevel, threshold: str
) -> None:
    await generate(GeminiProvider(KEY, MODEL, fake.url, 10, safety=level))
    [req] = fake.requests
    assert req.json["safetySettings"] == [{"category": c, "threshold": threshold} for c in CATEGORIES]


@pytest.mark.parametrize(
    ("mode", "field", "reason"),
    [
        *[("blocked", "blockReason", r) for r in ("SAFETY", "OTHER", "PROHIBITED_CONTENT", "IMAGE_SAFETY")],
        *[
            ("image_blocked", "finishReason", r)
            for r in ("IMAGE_SAFETY", "SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT")
        ],
    ],
)
async def test_a_blocked_prompt_or_image_is_a_refusal_with_its_reason(
    fake: FakeGemini, mode: str, field: str, reason: str
) -> None:
    fake.behave(mode, body=reason)
    err = await failure(GeminiProvider(KEY, MODEL, fake.url, 10))
    assert err.kind is ErrorKind.REFUSED
    assert err.detail == f"{field} {reason}"


@pytest.mark.parametrize("reason", ["NO_IMAGE", "OTHER", "IMAGE_OTHER", "RECITATION"])
async def test_no_image_for_other_reasons_is_bad_output_not_a_refusal(fake: FakeGemini, reason: str) -> None:
    fake.behave("image_blocked", body=reason)
    err = await failure(GeminiProvider(KEY, MODEL, fake.url, 10))
    assert err.kind is ErrorKind.BAD_OUTPUT
    assert reason in err.detail
