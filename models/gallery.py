"""Every image Telegram accepted for a generation: its message and file ids, so buttons, /history and
"📎 Original" work from the database alone (after a restart, on any instance) with no re-upload."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UtcDateTime


class GenerationImage(Base):
    __tablename__ = "generation_images"
    __table_args__ = (UniqueConstraint("generation_id", "position", name="uq_generation_images_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    generation_id: Mapped[int] = mapped_column(Integer, ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    # The owner, copied from the generation: /history and /history clear read this index alone.
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    position: Mapped[int] = mapped_column(Integer)  # 0-based place in the result (an album has several)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # "photo" or "document": a file_id is usable only as its kind
    file_id: Mapped[str] = mapped_column(String(256))
    file_unique_id: Mapped[str] = mapped_column(String(128))
    seed: Mapped[int | None] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
