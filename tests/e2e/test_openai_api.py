"""Issue 11 end to end: the official `openai` client calls the bot's HTTP API on 127.0.0.1; the key is
made through the bot (/apikey, the button), jobs run on the bot's queue and workers against the fake
providers, and the daily limit is the one the chat uses."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta
from pathlib import Path

import httpx
import openai
import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.web.server import serve
from keyboards.apikey import ApiKeyButton, KeyAction
from models import ApiFile, ApiKey
from tests.e2e.api_support import api, client, new_key
from tests.fakes.providers import make_image
from tests.harness import FakeUser, Harness, is_image

pytestmark = pytest.mark.e2e

ANN = FakeUser(id=1001, first_name="Ann", username="ann")
BOB = FakeUser(id=1002, first_name="Bob", username="bob")


async def test_generate_b64_and_url_with_the_official_client(tmp_path: Path, clock: ManualClock) -> None:
    async with api(tmp_path, clock) as (h, base):
        key = await new_key(h, ANN)
        async with client(base, key) as oa:
            made = await oa.images.generate(
                model="gemini-flash", prompt="a lighthouse", response_format="b64_json", size="1024x1024"
            )
            [image] = made.data
            assert image.b64_json is not None and h.gemini.made(base64.b64decode(image.b64_json))
            assert await h.used_today(ANN.id) == 1

            by_url = await oa.images.generate(model="gemini-flash", prompt="a harbour", n=2, response_format="url")
        assert len(by_url.data) == 2
        async with httpx.AsyncClient() as http:
            for item in by_url.data:
                assert item.url is not None and item.url.startswith(f"{base}/v1/images/files/")
                got = await http.get(item.url)
                assert got.status_code == 200 and got.headers["content-type"].startswith("image/")
                assert is_image(got.content) and h.gemini.made(got.content)
            assert (await http.get(f"{base}/v1/images/files/not-a-real-id")).status_code == 404
            clock.advance(timedelta(seconds=3601))  # API_RESULT_TTL
            expired = await http.get(by_url.data[0].url or "")
            assert expired.status_code == 404 and expired.json()["error"]["code"] == "file_not_found"
        assert await h.used_today(ANN.id) == 3  # the chat's counter: 1 + 2 images
        rows = await h.generations()
        assert [r.source for r in rows] == ["api", "api"] and all(r.status == "delivered" for r in rows)
        assert h.photos(ANN) == []  # nothing went to Telegram


async def test_models_list_follows_the_level(tmp_path: Path, clock: ManualClock) -> None:
    async with api(tmp_path, clock, ADMIN_IDS=BOB.id) as (h, base):
        ann, bob = await new_key(h, ANN), await new_key(h, BOB)
        async with client(base, ann) as oa:
            ids = [m.id async for m in oa.models.list()]
            assert ids == ["gemini-flash", "flux-dev", "pollinations"]
            assert (await oa.models.retrieve("flux-dev")).owned_by
            with pytest.raises(openai.NotFoundError):
                await oa.models.retrieve("flux-pro")
        async with client(base, bob) as oa:
            assert "flux-pro" in [m.id async for m in oa.models.list()]


async def test_locked_model_is_refused_with_openais_error_shape(tmp_path: Path, clock: ManualClock) -> None:
    async with api(tmp_path, clock) as (h, base):
        key = await new_key(h, ANN)
        async with client(base, key) as oa:
            with pytest.raises(openai.PermissionDeniedError) as refused:
                await oa.images.generate(model="flux-pro", prompt="a fox", response_format="b64_json")
        assert refused.value.status_code == 403
        error = refused.value.body
        assert isinstance(error, dict)
        assert error["param"] == "model" and error["code"] == "model_not_allowed"
        assert error["type"] == "invalid_request_error" and "subscriber" in error["message"]
        assert await h.used_today(ANN.id) == 0 and h.replicate.requests == []


async def test_bad_fields_are_400_naming_the_param(tmp_path: Path, clock: ManualClock) -> None:
    async with api(tmp_path, clock) as (h, base):
        key = await new_key(h, ANN)
        async with client(base, key) as oa:
            for kwargs, param in (
                ({"n": 9}, "n"),
                ({"size": "77x77"}, "size"),
                ({"model": "dall-e-3"}, "model"),
                ({"response_format": "gif"}, "response_format"),
                ({"response_format": ""}, "response_format"),  # schemathesis found "" taken as the default
            ):
                with pytest.raises(openai.BadRequestError) as bad:
                    await oa.images.generate(prompt="a fox", **kwargs)  # type: ignore[arg-type]
                assert isinstance(bad.value.body, dict) and bad.value.body["param"] == param, kwargs
        async with httpx.AsyncClient() as http:
            headers = {"Authorization": f"Bearer {key}"}
            broken = await http.post(f"{base}/v1/images/generations", content=b"{nope", headers=headers)
            assert broken.status_code == 400 and broken.json()["error"]["message"]
            listed = await http.post(f"{base}/v1/images/generations", json=["a fox"], headers=headers)
            assert listed.status_code == 400
            empty = await http.post(f"{base}/v1/images/generations", json={"prompt": "  "}, headers=headers)
            assert empty.status_code == 400 and empty.json()["error"]["param"] == "prompt"
            for raw in (b'{"prompt": "a \\ud800 fox"}', b'{"prompt": "a \\u0000 fox"}', b"[" * 100_000):
                odd = await http.post(f"{base}/v1/images/generations", content=raw, headers=headers)
                assert odd.status_code == 400, raw[:40]
            nowhere = await http.get(f"{base}/v1/nope", headers=headers)
            assert nowhere.status_code == 404 and set(nowhere.json()["error"]) == {"message", "type", "param", "code"}
            wrong = await http.delete(f"{base}/v1/models", headers=headers)
            assert wrong.status_code == 405 and "GET" in wrong.headers["Allow"] and wrong.json()["error"]
            odd_key = await http.get(f"{base}/v1/models", headers={"Authorization": "Bearer sk-img-ÿÿ".encode()})
            assert odd_key.status_code == 401
        assert await h.used_today(ANN.id) == 0 and await h.generations() == []


async def test_revoked_and_unknown_keys_get_401(tmp_path: Path, clock: ManualClock) -> None:
    async with api(tmp_path, clock) as (h, base):
        key = await new_key(h, ANN)
        async with client(base, key) as oa:
            assert [m.id async for m in oa.models.list()]
        # A key with the right prefix but a wrong secret part is refused too.
        forged = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
        async with client(base, forged) as oa:
            with pytest.raises(openai.AuthenticationError):
                await oa.models.list()

        [row] = await h.rows(ApiKey)
        assert key not in (row.digest, row.prefix) and len(row.digest) == 64  # only the keyed hash is kept
        await h.say(ANN, "/apikey")
        listing = h.tg.calls_of("sendMessage", ok=True, chat_id=ANN.id)[-1]
        assert row.prefix in listing.result["text"] and key not in listing.result["text"]
        revoke = ApiKeyButton(action=KeyAction.REVOKE, key_id=row.id).pack()
        assert revoke in listing.callback_datas
        await h.click(ANN, revoke, message_id=listing.result["message_id"])

        async with client(base, key) as oa:
            with pytest.raises(openai.AuthenticationError) as denied:
                await oa.images.generate(prompt="a fox", response_format="b64_json")
        assert denied.value.status_code == 401
        assert isinstance(denied.value.body, dict) and denied.value.body["code"] == "invalid_api_key"
        async with httpx.AsyncClient() as http:
            bare = await http.get(f"{base}/v1/models")
            assert bare.status_code == 401 and set(bare.json()["error"]) == {"message", "type", "param", "code"}
        assert await h.generations() == []


async def test_daily_limit_is_shared_with_the_chat(tmp_path: Path, clock: ManualClock) -> None:
    async with api(tmp_path, clock, DAILY_LIMIT_USER=2) as (h, base):
        key = await new_key(h, ANN)
        await h.say(ANN, "a lighthouse")
        await h.say(ANN, "a harbour")
        assert len(h.photos(ANN)) == 2
        async with client(base, key) as oa:
            with pytest.raises(openai.RateLimitError) as limited:
                await oa.images.generate(prompt="a third one", response_format="b64_json")
        response = limited.value.response
        assert response.status_code == 429
        retry_after = int(response.headers["retry-after"])
        assert 0 < retry_after <= 24 * 3600  # seconds until the quota day turns
        assert isinstance(limited.value.body, dict) and limited.value.body["code"] == "daily_limit_reached"
        assert await h.used_today(ANN.id) == 2


async def test_api_first_then_the_chat_hits_the_limit(tmp_path: Path, clock: ManualClock) -> None:
    async with api(tmp_path, clock, DAILY_LIMIT_USER=1) as (h, base):
        key = await new_key(h, ANN)
        async with client(base, key) as oa:
            await oa.images.generate(prompt="a fox", response_format="b64_json")
        await h.say(ANN, "another fox")
        assert h.photos(ANN) == []
        assert any("limit" in text.lower() for text in h.texts(ANN))


async def test_failures_are_refunded_and_reported(tmp_path: Path, clock: ManualClock) -> None:
    async with api(tmp_path, clock) as (h, base):
        key = await new_key(h, ANN)
        h.gemini.behave("status", status=500)
        h.replicate.behave("status", status=500)
        h.pollinations.behave("garbage")
        async with client(base, key) as oa:
            with pytest.raises(openai.APIStatusError) as failed:
                await oa.images.generate(prompt="a fox", response_format="b64_json")
        assert failed.value.status_code == 502
        assert isinstance(failed.value.body, dict) and failed.value.body["code"] == "upstream_failed"
        assert await h.used_today(ANN.id) == 0
        [row] = await h.generations()
        assert row.status == "failed" and row.source == "api"


async def test_edit_is_submitted_as_an_edit_job_with_the_uploaded_photo(tmp_path: Path, clock: ManualClock) -> None:
    """The upload is stored, the job is JobKind.EDIT pointing at it, and the worker sends those very
    bytes with the instruction to Gemini's image model, as it does for a photo from the chat."""
    photo = make_image((10, 200, 10))
    async with api(tmp_path, clock) as (h, base):
        key = await new_key(h, ANN)
        async with client(base, key) as oa:
            edited = await oa.images.edit(
                image=("in.png", photo, "image/png"), prompt="make it blue", response_format="b64_json"
            )
            assert edited.data[0].b64_json and is_image(base64.b64decode(edited.data[0].b64_json))
            assert h.gemini.received_images() == [photo] and "make it blue" in h.gemini.received_texts()[-1]
            with pytest.raises(openai.BadRequestError) as bad:
                await oa.images.edit(image=("in.png", b"not an image", "image/png"), prompt="make it blue")
            assert isinstance(bad.value.body, dict) and bad.value.body["param"] == "image"
        [row] = await h.generations()
        assert row.kind == "edit" and row.source == "api" and row.prompt == "make it blue"
        assert row.input_file_id is not None and row.input_file_id.startswith("api:")
        async with h.app.services.sessions() as session:  # type: ignore[union-attr]
            stored = await session.get(ApiFile, row.input_file_id.removeprefix("api:"))
            assert stored is not None and stored.data == photo and stored.purpose == "input"
            results = (await session.execute(select(ApiFile).where(ApiFile.purpose == "result"))).scalars().all()
            assert len(results) == 1
        assert await h.used_today(ANN.id) == 1


async def test_api_keys_off_without_the_secret(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock) as h:
        await h.say(ANN, "/apikey")
        assert "not enabled" in h.texts(ANN)[-1]
        assert h.app is not None
        async with serve(h.app.web_app(), "127.0.0.1", 0) as where, httpx.AsyncClient() as http:
            assert (await http.get(f"{where.url}/v1/models")).status_code == 404
            assert (await http.get(f"{where.url}/healthz")).status_code == 200


async def test_a_banned_users_key_is_refused(tmp_path: Path, clock: ManualClock) -> None:
    async with api(tmp_path, clock) as (h, base):
        key = await new_key(h, ANN)
        assert h.app is not None
        await h.app.services.bans.set_ban(ANN.id, True, "spam")
        async with client(base, key) as oa:
            with pytest.raises(openai.PermissionDeniedError) as banned:
                await oa.images.generate(prompt="a fox", response_format="b64_json")
        assert isinstance(banned.value.body, dict) and banned.value.body["code"] == "account_banned"
        assert await h.generations() == []


async def test_a_caller_that_times_out_is_not_charged(tmp_path: Path, clock: ManualClock) -> None:
    """API_TIMEOUT passes: the job waiting behind the user's running one is withdrawn; the running one
    finishes after its caller left, so its image is not stored and its unit comes back."""
    async with api(tmp_path, clock, API_TIMEOUT=1) as (h, base):
        key = await new_key(h, ANN)
        h.gemini.behave("delay", seconds=1.8)
        async with client(base, key) as oa:
            first = asyncio.create_task(oa.images.generate(prompt="one", response_format="b64_json"))
            await asyncio.sleep(0.3)  # the first is running; the second waits behind INFLIGHT_CAP user:1
            second = asyncio.create_task(oa.images.generate(prompt="two", response_format="b64_json"))
            clock.advance(timedelta(seconds=5))  # the clock the worker reads moves on meanwhile
            for task in (first, second):
                with pytest.raises(openai.APIStatusError) as late:
                    await task
                assert late.value.status_code == 504
        await h.settle()
        for _ in range(50):  # the running job ends after its caller gave up
            if all(r.status not in ("queued", "running", "waiting") for r in await h.generations()):
                break
            await asyncio.sleep(0.1)
        rows = await h.generations()
        assert [(r.prompt, r.status) for r in rows] == [("one", "undelivered"), ("two", "cancelled")]
        assert await h.used_today(ANN.id) == 0
        assert await h.rows(ApiFile) == []
