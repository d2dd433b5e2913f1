"""FSM storage for the little conversation state the bot has (waiting for a description).

aiogram's MemoryStorage keeps a record for every chat that ever wrote (reading the state creates
one), so memory grows with the user count forever. This one keeps only chats that have state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import StateType, StorageKey
from aiogram.fsm.storage.memory import MemoryStorage, MemoryStorageRecord


class CompactMemoryStorage(MemoryStorage):
    async def get_state(self, key: StorageKey) -> str | None:
        record = self.storage.get(key)
        return record.state if record else None

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        record = self.storage.get(key)
        return record.data.copy() if record else {}

    async def get_value(self, storage_key: StorageKey, dict_key: str, default: Any | None = None) -> Any | None:
        return (await self.get_data(storage_key)).get(dict_key, default)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        self._store(key, self.storage.get(key, MemoryStorageRecord()), state=value)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await super().set_data(key, data)  # validates, then stores
        self._store(key, self.storage[key])

    def _store(self, key: StorageKey, record: MemoryStorageRecord, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(record, name, value)
        if record.state is None and not record.data:
            self.storage.pop(key, None)
        else:
            self.storage[key] = record
