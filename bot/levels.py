"""Access levels, ordered: a level holds every model of the levels below it."""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    USER = "user"
    SUBSCRIBER = "subscriber"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, required: Level) -> bool:
        return self.rank >= required.rank


_RANK = {Level.USER: 0, Level.SUBSCRIBER: 1, Level.ADMIN: 2}
