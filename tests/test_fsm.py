"""The FSM storage keeps only chats that have state, so memory does not grow with the user count."""

from __future__ import annotations

from aiogram.fsm.storage.base import StorageKey

from bot.fsm import CompactMemoryStorage


async def test_only_chats_with_state_are_kept() -> None:
    storage = CompactMemoryStorage()
    keys = [StorageKey(bot_id=1, chat_id=i, user_id=i) for i in range(100)]
    for key in keys:
        assert await storage.get_state(key) is None and await storage.get_data(key) == {}
    assert storage.storage == {}
    await storage.set_state(keys[0], "GenerateFlow:waiting_prompt")
    await storage.set_data(keys[1], {"x": 1})
    assert await storage.get_state(keys[0]) == "GenerateFlow:waiting_prompt"
    assert await storage.get_value(keys[1], "x") == 1 and await storage.get_value(keys[1], "y", 5) == 5
    assert len(storage.storage) == 2
    await storage.set_state(keys[0], None)
    await storage.set_data(keys[1], {})
    assert storage.storage == {}
