"""A user's image options (/settings): one row per user, created on the first change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UtcDateTime


class UserPreferences(Base):
    __tablename__ = "user_preferences"

    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    aspect_ratio: Mapped[str] = mapped_column(String(8), default="1:1", server_default="1:1")
    count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    seed: Mapped[int | None] = mapped_column(BigInteger)  # None: a new random seed every time
    negative_prompt: Mapped[str | None] = mapped_column(String(300))
    style: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
