"""A Telegram user as the bot knows them: profile, level, chosen model, moderation state."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UtcDateTime


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # Telegram id
    username: Mapped[str | None] = mapped_column(String(64), index=True)
    first_name: Mapped[str] = mapped_column(String(128), default="")
    last_name: Mapped[str | None] = mapped_column(String(128))
    language_code: Mapped[str | None] = mapped_column(String(16))

    # Stored level; the effective level also considers ADMIN_IDS and level_until (see services.users).
    level: Mapped[str] = mapped_column(String(16), default="user")
    level_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    chosen_model: Mapped[str] = mapped_column(String(32), default="gemini-flash")

    is_banned: Mapped[bool] = mapped_column(Boolean, default=False)
    ban_reason: Mapped[str | None] = mapped_column(Text)
    ban_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    expiry_warned_for: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The quota day the admins were last told about this user's refusals: at most one alert a day.
    refusal_alert_day: Mapped[date | None] = mapped_column(Date)
    # Prompt help (/prompthelp): non-English prompts translated, short ones enriched, before generation.
    prompt_help: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # First message in the private chat with the bot (or at migration 0012): inline images can be
    # uploaded there. An inline query alone registers a user without it.
    private_chat_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
