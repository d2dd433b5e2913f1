"""The provider's exact bytes of each delivered photo, kept for a while for "📎 Original".

Telegram re-encodes a photo and a photo's file id cannot be sent as a document, so the untouched
file exists only here. The bytes expire (ORIGINALS_DAYS); the document's file id Telegram returns
for the first "📎 Original" is kept, so later presses send it again with no upload.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UtcDateTime


class OriginalImage(Base):
    __tablename__ = "original_images"
    __table_args__ = (UniqueConstraint("generation_id", "position", name="uq_original_images_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    generation_id: Mapped[int] = mapped_column(Integer, ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)  # /history clear forgets these too
    position: Mapped[int] = mapped_column(Integer)  # 0-based place in the result, as in generation_images
    mime_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes | None] = mapped_column(LargeBinary)  # None once expired (a document file id stays)
    document_file_id: Mapped[str | None] = mapped_column(String(256))  # the original as Telegram stored it
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
