"""Image bytes the HTTP API hands over: results (served by an unguessable, expiring id, read by the
front end that waits for the job on any instance) and the photos sent to /v1/images/edits."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UtcDateTime


class ApiFilePurpose(StrEnum):
    RESULT = "result"  # an image a job made
    INPUT = "input"  # an uploaded photo an edit job works on


class ApiFile(Base):
    __tablename__ = "api_files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # secrets.token_urlsafe: the URL's only secret
    generation_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("generations.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(8), default=ApiFilePurpose.RESULT)
    position: Mapped[int] = mapped_column(Integer, default=0)  # order of the images in the job
    mime_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
