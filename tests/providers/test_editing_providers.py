"""The editors and the upscaler with the real clients (google-genai, httpx) against the fake servers:
what goes on the wire, and how each failure is classified for the editing chain."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from bot.providers.base import ErrorKind, ProviderError
from bot.providers.gemini_edit import GeminiEditor
from bot.providers.replicate_kontext import KontextEditor
from bot.providers.upscaler import RealEsrganUpscaler
from bot.safety import SafetyLevel
from tests.fakes.providers import REPLICATE_E005, FakeGemini, FakeReplicate, make_image

GEMINI_KEY = "AIzaSy_SECRET_gemini_key_0123456789"
REPLICATE_KEY = "r8_SECRET_replicate_0123456789"
MODEL = "gemini-3.1-flash-image"
KONTEXT = "black-forest-labs/flux-kontext-pro"
ESRGAN = "nightmareai/real-esrgan"
ESRGAN_VERSION = ESRGAN + ":" + "ab" * 32
PHOTO = make_image((250, 250, 250), (40, 30), "JPEG")


async def test_gemini_edit_sends_the_instruction_and_the_photo_inline() -> None:
    async with FakeGemini(tokens={GEMINI_KEY}) as fake:
        editor = GeminiEditor(GEMINI_KEY, MODEL, fake.url, 10)
        try:
            image = await editor.edit(PHOTO, "image/jpeg", "add a moon")
        finally:
            await editor.aclose()
        assert fake.made(image.data) and (image.provider, image.model) == ("gemini", MODEL)
        [req] = fake.requests
        [content] = req.json["contents"]
        assert content["parts"][0] == {"text": "add a moon"}
        inline = content["parts"][1]["inlineData"]
        assert (inline.get("mimeType") or inline.get("mime_type")) == "image/jpeg"  # google-genai 3.4 sends the latter
        assert fake.received_images() == [PHOTO]
        assert "imageConfig" not in req.json["generationConfig"]  # the photo's own shape is kept
        assert {s["threshold"] for s in req.json["safetySettings"]} == {"BLOCK_MEDIUM_AND_ABOVE"}


@pytest.mark.parametrize(
    ("mode", "status", "kind"),
    [
        ("blocked", 500, ErrorKind.REFUSED),
        ("status", 503, ErrorKind.UNAVAILABLE),
        ("no_image", 500, ErrorKind.BAD_OUTPUT),
    ],
)
async def test_gemini_edit_failures_are_classified(mode: str, status: int, kind: ErrorKind) -> None:
    async with FakeGemini(tokens={GEMINI_KEY}) as fake:
        fake.behave(mode, status=status)
        editor = GeminiEditor(GEMINI_KEY, MODEL, fake.url, 10)
        with pytest.raises(ProviderError) as info:
            await editor.edit(PHOTO, "image/jpeg", "add a moon")
        await editor.aclose()
        assert info.value.kind is kind and GEMINI_KEY not in str(info.value)


async def test_gemini_editor_without_a_key_is_not_configured() -> None:
    editor = GeminiEditor(None, MODEL, "http://127.0.0.1:9", 1)
    assert not editor.can_edit()
    with pytest.raises(ProviderError) as info:
        await editor.edit(PHOTO, "image/jpeg", "x")
    assert info.value.kind is ErrorKind.NOT_CONFIGURED


async def test_kontext_input_and_polling() -> None:
    async with FakeReplicate(tokens={REPLICATE_KEY}) as fake:
        fake.behave("processing", key=KONTEXT, polls=2)
        editor = KontextEditor(REPLICATE_KEY, fake.url, 10, safety=SafetyLevel.STRICT)
        editor.runner.poll_interval = 0.01
        try:
            image = await editor.edit(PHOTO, "image/jpeg", "make it snow")
        finally:
            await editor.aclose()
        assert fake.made_by(image.data, KONTEXT) and image.model == KONTEXT
        [post] = fake.predictions_for(KONTEXT)
        assert post.header("prefer") == "wait" and post.header("authorization") == f"Bearer {REPLICATE_KEY}"
        given = post.json["input"]
        assert given["input_image"] == "data:image/jpeg;base64," + base64.b64encode(PHOTO).decode()
        assert (given["prompt"], given["aspect_ratio"], given["safety_tolerance"]) == (
            "make it snow",
            "match_input_image",
            1,
        )
        assert (
            len([r for r in fake.requests if r.method == "GET" and "/v1/predictions/" in r.path]) == 3
        )  # 2 pending, then done


@pytest.mark.parametrize(
    ("mode", "status", "kind"),
    [
        ("nsfw", 500, ErrorKind.REFUSED),
        ("status", 401, ErrorKind.AUTH),
        ("status", 503, ErrorKind.UNAVAILABLE),
        ("failed", 500, ErrorKind.BAD_OUTPUT),
        ("garbage", 500, ErrorKind.BAD_OUTPUT),
        ("bomb", 500, ErrorKind.TOO_LARGE),
    ],
)
async def test_kontext_failures_are_classified(mode: str, status: int, kind: ErrorKind) -> None:
    async with FakeReplicate() as fake:
        fake.behave(mode, key=KONTEXT, status=status)
        editor = KontextEditor(REPLICATE_KEY, fake.url, 10)
        with pytest.raises(ProviderError) as info:
            await editor.edit(PHOTO, "image/jpeg", "make it snow")
        await editor.aclose()
        assert info.value.kind is kind, info.value
        assert REPLICATE_KEY not in str(info.value)
        if mode == "nsfw":
            assert info.value.detail == REPLICATE_E005


async def test_upscaler_runs_the_pinned_version_and_doubles() -> None:
    async with FakeReplicate(tokens={REPLICATE_KEY}) as fake:
        upscaler = RealEsrganUpscaler(REPLICATE_KEY, fake.url, 10, model=ESRGAN_VERSION)
        try:
            image = await upscaler.upscale(PHOTO, "image/jpeg", 2)
        finally:
            await upscaler.aclose()
        [post] = fake.predictions_for(ESRGAN)
        assert post.path == "/v1/predictions" and post.json["version"] == ESRGAN_VERSION
        assert post.json["input"]["scale"] == 2 and post.json["input"]["face_enhance"] is False
        with Image.open(io.BytesIO(image.data)) as img:
            assert img.size == (80, 60)
        assert image.model == ESRGAN and fake.made_by(image.data, ESRGAN)


async def test_no_upscaler_without_a_replicate_token() -> None:
    upscaler = RealEsrganUpscaler(None, "http://127.0.0.1:9", 1)
    assert not upscaler.can_upscale()
    with pytest.raises(ProviderError) as info:
        await upscaler.upscale(PHOTO, "image/jpeg", 2)
    assert info.value.kind is ErrorKind.NOT_CONFIGURED
