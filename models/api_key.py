"""A user's key for the OpenAI-compatible HTTP API. Only a keyed hash of the secret is stored; the
prefix is not secret and finds the row, so checking a key is one indexed read and one constant-time compare."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UtcDateTime


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)  # shown in /apikey; looks the key up
    digest: Mapped[str] = mapped_column(String(64))  # HMAC-SHA256(API_KEY_SECRET, whole key), hex
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # kept for the record, never accepted again
