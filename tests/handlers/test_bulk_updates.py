"""Through the real Dispatcher: prompts are bulk work and wait for the gate, commands never do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from bot.bulk import BulkGate, bulk_work
from tests.fakes.telegram import FakeUser

ANN = FakeUser(id=701, first_name="Ann")
BotFactory = Callable[..., Any]


@asynccontextmanager
async def crowd_holding_the_gate(b: Any) -> AsyncIterator[tuple[BulkGate, asyncio.Event]]:
    """Bulk work that holds the one slot, as a burst of prompts would, until the event is set."""
    gate = b.services.sessions.gate
    assert gate is not None and gate.slots == 1
    hold = asyncio.Event()
    taken = asyncio.Event()

    async def crowd() -> None:
        with bulk_work():
            async with gate.hold():
                taken.set()
                await hold.wait()

    crowding = asyncio.create_task(crowd())
    await taken.wait()
    try:
        yield gate, hold
    finally:
        hold.set()
        await crowding


async def test_a_command_is_answered_while_prompts_wait_for_the_database(make_bot: BotFactory) -> None:
    b = await make_bot(BULK_DB_SLOTS="1")
    async with crowd_holding_the_gate(b) as (gate, hold):
        await asyncio.wait_for(b.feed(b.tg.message(ANN, "/help")), 5)
        assert "How it works" in b.tg.sent_texts(ANN.id)[-1]
        prompt = asyncio.create_task(b.feed(b.tg.message(ANN, "a lighthouse")))
        await asyncio.sleep(0.2)
        assert not prompt.done() and gate.waiting == 1  # the prompt is bulk work: it waits its turn
        assert b.tg.sent_photos(ANN.id) == []
        hold.set()
        await asyncio.wait_for(prompt, 10)
    assert len(b.tg.sent_photos(ANN.id)) == 1


async def test_a_prompt_is_acknowledged_at_once_even_while_it_waits(make_bot: BotFactory) -> None:
    b = await make_bot(BULK_DB_SLOTS="1")
    async with crowd_holding_the_gate(b) as (_gate, hold):
        prompt = asyncio.create_task(b.feed(b.tg.message(ANN, "a lighthouse")))
        await asyncio.sleep(0.2)
        assert not prompt.done()
        actions = b.tg.calls_of("sendChatAction")
        assert [(c.params["chat_id"], c.params["action"]) for c in actions] == [(ANN.id, "upload_photo")]
        hold.set()
        await asyncio.wait_for(prompt, 10)


async def test_commands_and_menu_buttons_are_neither_acknowledged_nor_bulk(make_bot: BotFactory) -> None:
    b = await make_bot(BULK_DB_SLOTS="1")
    async with crowd_holding_the_gate(b):
        for text in ("/profile", "👤 Profile", "👤 Профиль"):
            await asyncio.wait_for(b.feed(b.tg.message(ANN, text)), 5)
            assert b.tg.sent_texts(ANN.id)[-1].startswith("Your profile")
        assert b.tg.calls_of("sendChatAction") == []
