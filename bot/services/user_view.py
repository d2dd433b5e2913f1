"""What the rest of the bot knows of a user: the profile Telegram sends, and the resolved view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.catalog import ModelId
from bot.levels import Level


@dataclass(frozen=True, slots=True)
class Profile:
    """What Telegram tells us about a user on each update."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = None


@dataclass(frozen=True, slots=True)
class UserView:
    """A user as the rest of the bot sees them, with the level already resolved for "now"."""

    id: int
    first_name: str
    username: str | None
    language_code: str | None
    level: Level
    stored_level: Level
    level_until: datetime | None
    chosen_model: ModelId
    is_banned: bool
    ban_reason: str | None
    ban_notified: bool
    blocked_bot: bool
    is_config_admin: bool
    created_at: datetime
    private_chat: bool = False  # has written to the bot in private (inline mode may upload there)

    @property
    def display_name(self) -> str:
        return f"@{self.username}" if self.username else self.first_name or str(self.id)
