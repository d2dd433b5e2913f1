"""The untouched file behind each delivered photo, for "📎 Original".

Telegram keeps only a re-encoded copy of a photo, and a photo's file id cannot be sent as a document,
so the provider's bytes are kept here for ORIGINALS_DAYS. The first "📎 Original" uploads them as a
document; the file id Telegram returns is recorded, so every later press (even after the bytes expire)
sends that document again with no upload. Nothing here knows Telegram beyond the id it stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.db import SessionFactory
from bot.services.image_rows import insert_image_rows
from models import OriginalImage

PURGE_EVERY_SECONDS = 3600.0  # bytes are kept for days: an hourly purge is plenty


@dataclass(frozen=True, slots=True)
class NewOriginal:
    """One delivered image's provider bytes, at its place in the result."""

    position: int
    data: bytes
    mime_type: str


@dataclass(frozen=True, slots=True)
class Original:
    """What is left of one original: its bytes (None once expired) and/or its document's file id."""

    position: int
    mime_type: str
    data: bytes | None
    document_file_id: str | None


class OriginalsService:
    def __init__(self, sessions: SessionFactory, clock: Clock, days: int, max_bytes: int) -> None:
        self._sessions = sessions
        self._clock = clock
        self._keep = timedelta(days=days)
        self._max_bytes = max_bytes

    @property
    def enabled(self) -> bool:
        return self._keep > timedelta(0)

    async def keep(
        self, generation_id: int, images: Sequence[NewOriginal], *, session: AsyncSession | None = None
    ) -> int:
        """Store the bytes (none when ORIGINALS_DAYS is 0; an image over PROVIDER_MAX_BYTES is skipped);
        a second store of the same image (a re-run job) changes nothing. Returns how many were offered.
        `session`: write in the caller's transaction (the worker's settling write) instead of one's own."""
        wanted = [image for image in images if len(image.data) <= self._max_bytes]
        if not self.enabled or not wanted:
            return 0
        if session is None:
            async with self._sessions.begin() as own:
                return await self.keep(generation_id, wanted, session=own)
        now = self._clock.now()
        rows: list[dict[str, Any]] = [
            {
                "position": image.position,
                "mime_type": image.mime_type[:32],
                "data": image.data,
                "created_at": now,
                "expires_at": now + self._keep,
            }
            for image in wanted
        ]
        await insert_image_rows(session, OriginalImage, generation_id, rows)
        return len(rows)

    async def of(self, generation_id: int) -> dict[int, Original]:
        """The generation's originals by position; bytes past their expiry are not handed out even
        before the purge has deleted them."""
        now = self._clock.now()
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(OriginalImage)
                    .where(OriginalImage.generation_id == generation_id)
                    .order_by(OriginalImage.position)
                )
            ).scalars()
            return {
                row.position: Original(
                    row.position,
                    row.mime_type,
                    row.data if row.expires_at > now else None,
                    row.document_file_id,
                )
                for row in rows
            }

    async def remember_document(self, generation_id: int, position: int, file_id: str) -> None:
        """The file id of the document Telegram made from the bytes: later presses send it, no upload."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(OriginalImage)
                .where(OriginalImage.generation_id == generation_id, OriginalImage.position == position)
                .values(document_file_id=file_id)
            )

    async def purge(self) -> int:
        """Drop expired bytes: rows with no document file id go; the others keep only the file id.
        Run periodically on one instance."""
        now = self._clock.now()
        expired = OriginalImage.expires_at <= now
        async with self._sessions.begin() as session:
            deleted = await session.execute(
                delete(OriginalImage).where(expired, OriginalImage.document_file_id.is_(None))
            )
            emptied = await session.execute(
                update(OriginalImage).where(expired, OriginalImage.data.is_not(None)).values(data=None)
            )
            return int(deleted.rowcount or 0) + int(emptied.rowcount or 0)  # type: ignore[attr-defined]
