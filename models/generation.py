"""One generation request and its outcome: the audit trail behind /profile, stats and crash recovery."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UtcDateTime


class Generation(Base):
    __tablename__ = "generations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="SET NULL"), index=True)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16), default="telegram")  # telegram | cli
    prompt: Mapped[str] = mapped_column(Text)
    model_requested: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str | None] = mapped_column(String(32))
    model_used: Mapped[str | None] = mapped_column(String(128))
    # True when a model other than the requested one made the image.
    fallback: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # pending -> delivered | failed | interrupted
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    error_class: Mapped[str | None] = mapped_column(String(64))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    # The quota day a unit was reserved on (None when nothing was reserved), so release hits that day.
    quota_day: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
