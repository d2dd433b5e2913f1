"""/apikey through the real Dispatcher: a key shown once in a code block, the list (prefix, dates),
revoking by button, only one's own keys, the cap, Russian, and the answer when keys are off."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.logs import settings_secrets
from bot.services.api_keys import MAX_KEYS_PER_USER, ApiKeyService
from keyboards.apikey import ApiKeyButton, KeyAction
from models import ApiKey
from tests.conftest import make_settings
from tests.fakes.telegram import FakeUser

ANN = FakeUser(id=701, first_name="Ann", username="ann")
IVAN = FakeUser(id=702, first_name="Иван", username="ivan", language_code="ru")
BotFactory = Callable[..., Any]
SECRET = "handler-test-secret-0123456789"
NEW = ApiKeyButton(action=KeyAction.NEW).pack()


async def _keys(b: Any) -> list[ApiKey]:
    async with b.services.sessions() as s:
        return list((await s.execute(select(ApiKey).order_by(ApiKey.id))).scalars())


async def test_create_shows_the_key_once_in_a_code_block_and_stores_only_its_hash(make_bot: BotFactory) -> None:
    b = await make_bot(API_KEY_SECRET=SECRET)
    await b.feed(b.tg.message(ANN, "/apikey"))
    listing = b.tg.sent_messages(ANN.id)[-1]
    assert "no API keys yet" in listing.result["text"] and NEW in listing.callback_datas

    await b.feed(b.tg.callback(ANN, NEW, message_id=listing.result["message_id"]))
    shown = b.tg.sent_messages(ANN.id)[-1]
    assert "shown only this once" in shown.result["text"]
    key = shown.result["text"].split()[-1]
    assert f"<code>{html.escape(key)}</code>" in shown.params["text"]  # a code block: one tap copies it
    assert await b.services.api_keys.authenticate(key) == ANN.id

    [row] = await _keys(b)
    assert row.user_id == ANN.id and key not in (row.digest, row.prefix) and key.startswith(f"sk-img-{row.prefix}-")
    edited = b.tg.calls_of("editMessageText", ok=True)[-1]  # the list under the button shows the new key
    assert row.prefix in edited.result["text"] and key not in edited.result["text"] and "never" in edited.result["text"]

    await b.feed(b.tg.message(ANN, "/apikey"))
    assert key not in b.tg.sent_texts(ANN.id)[-1]  # never shown again


async def test_revoke_button_revokes_only_ones_own_key(make_bot: BotFactory) -> None:
    b = await make_bot(API_KEY_SECRET=SECRET)
    keys: ApiKeyService = b.services.api_keys
    await b.feed(b.tg.message(ANN, "/apikey"))
    await b.feed(b.tg.message(IVAN, "/apikey"))
    ann_key = await keys.create(ANN.id)
    ivan_key = await keys.create(IVAN.id)

    # Ivan forges a button naming Ann's key: nothing changes.
    forged = ApiKeyButton(action=KeyAction.REVOKE, key_id=ann_key.view.id).pack()
    await b.feed(b.tg.callback(IVAN, forged))
    assert "уже отозван" in b.tg.calls_of("answerCallbackQuery")[-1].params["text"]
    assert await keys.authenticate(ann_key.key) == ANN.id

    await b.feed(b.tg.callback(ANN, forged))
    assert b.tg.calls_of("answerCallbackQuery")[-1].params["text"] == "Key revoked."
    assert await keys.authenticate(ann_key.key) is None
    assert await keys.authenticate(ivan_key.key) == IVAN.id
    assert [k.prefix for k in await keys.list(ANN.id)] == []


async def test_key_cap_and_last_used(make_bot: BotFactory, clock: Any) -> None:
    b = await make_bot(API_KEY_SECRET=SECRET)
    keys: ApiKeyService = b.services.api_keys
    await b.feed(b.tg.message(ANN, "/apikey"))
    made = [await keys.create(ANN.id) for _ in range(MAX_KEYS_PER_USER)]
    await b.feed(b.tg.message(ANN, "/apikey"))
    full = b.tg.sent_messages(ANN.id)[-1]
    assert NEW not in full.callback_datas and len(full.callback_datas) == MAX_KEYS_PER_USER
    await b.feed(b.tg.callback(ANN, NEW))
    assert "revoke one first" in b.tg.calls_of("answerCallbackQuery")[-1].params["text"]
    assert len(await _keys(b)) == MAX_KEYS_PER_USER

    clock.advance(timedelta(hours=1))
    assert await keys.authenticate(made[0].key) == ANN.id
    [first, *_rest] = await keys.list(ANN.id)
    assert first.last_used_at == clock.now()


async def test_russian_and_keys_off(make_bot: BotFactory) -> None:
    on = await make_bot(API_KEY_SECRET=SECRET)
    await on.feed(on.tg.message(IVAN, "/apikey"))
    listing = on.tg.sent_messages(IVAN.id)[-1]
    assert "Ключи API" in listing.result["text"] and "➕ Новый ключ" in [b["text"] for b in listing.buttons]

    off = await make_bot()
    await off.feed(off.tg.message(ANN, "/apikey"))
    assert "not enabled" in off.tg.sent_texts(ANN.id)[-1]
    await off.feed(off.tg.callback(ANN, NEW))
    assert "not enabled" in off.tg.calls_of("answerCallbackQuery")[-1].params["text"]
    assert await _keys(off) == []


async def test_authenticate_refuses_what_is_not_a_live_key(make_bot: BotFactory) -> None:
    b = await make_bot(API_KEY_SECRET=SECRET)
    await b.feed(b.tg.message(ANN, "/apikey"))
    keys: ApiKeyService = b.services.api_keys
    created = await keys.create(ANN.id)
    for wrong in ("", "sk-img-", created.key[:-1], created.key + "x", "Bearer " + created.key, "x" * 500):
        assert await keys.authenticate(wrong) is None, wrong
    # The same key checked by a server with another secret is unknown: the hash is keyed.
    other = ApiKeyService(b.services.sessions, b.services.clock, "another-secret-0123456789")
    assert await other.authenticate(created.key) is None


def test_the_server_secret_is_masked_in_logs(db_url: str) -> None:
    assert SECRET in settings_secrets(make_settings(db_url, API_KEY_SECRET=SECRET))
