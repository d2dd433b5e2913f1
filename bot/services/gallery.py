"""Delivered images kept for later: the buttons under a result, /history and "📎 Original".

A result is read back whole from the database (the generation row and its images), so a button
pressed after a restart or on another instance finds everything it needs. Nothing here knows Telegram
beyond the ids it stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.catalog import ModelId
from bot.clock import Clock
from bot.db import SessionFactory
from bot.providers.base import ImageOptions
from bot.services.image_rows import insert_image_rows
from models import Generation, GenerationImage, JobKind, OriginalImage


@dataclass(frozen=True, slots=True)
class SentImage:
    """One image as Telegram accepted it."""

    position: int
    chat_id: int
    message_id: int
    kind: str  # "photo" or "document"
    file_id: str
    file_unique_id: str
    width: int | None = None
    height: int | None = None
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class StoredResult:
    """A delivered generation with its images: everything a result button acts on."""

    generation_id: int
    user_id: int | None
    prompt: str
    model: ModelId
    model_used: str | None
    kind: JobKind
    options: ImageOptions
    input_file_id: str | None
    created_at: datetime
    images: list[SentImage] = field(default_factory=list)

    @property
    def cover(self) -> SentImage | None:
        return self.images[0] if self.images else None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    items: list[StoredResult]
    page: int  # 0-based, clamped to the pages there are
    pages: int  # at least 1
    total: int


class GalleryService:
    def __init__(self, sessions: SessionFactory, clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def record(self, generation_id: int, images: list[SentImage], *, session: AsyncSession | None = None) -> None:
        """Store what Telegram accepted; a second record of the same image (a re-run) changes nothing.
        `session`: write in the caller's transaction (the worker's settling write) instead of one's own."""
        if not images:
            return
        if session is None:
            async with self._sessions.begin() as own:
                return await self.record(generation_id, images, session=own)
        now = self._clock.now()
        rows: list[dict[str, Any]] = [
            {
                "position": image.position,
                "chat_id": image.chat_id,
                "message_id": image.message_id,
                "kind": image.kind,
                "file_id": image.file_id,
                "file_unique_id": image.file_unique_id,
                "seed": image.seed,
                "width": image.width,
                "height": image.height,
                "created_at": now,
            }
            for image in images
        ]
        await insert_image_rows(session, GenerationImage, generation_id, rows)

    async def result(self, generation_id: int) -> StoredResult | None:
        """The generation and its stored images (none if they were never stored or were cleared)."""
        async with self._sessions() as session:
            row = await session.get(Generation, generation_id)
            if row is None:
                return None
            images = (
                await session.execute(
                    select(GenerationImage)
                    .where(GenerationImage.generation_id == generation_id)
                    .order_by(GenerationImage.position)
                )
            ).scalars()
            return _result(row, [_image(i) for i in images])

    async def history(self, user_id: int, page: int, per_page: int = 5) -> HistoryPage:
        """The user's delivered generations that still have images, newest first."""
        async with self._sessions() as session:
            total = int(
                await session.scalar(
                    select(func.count(func.distinct(GenerationImage.generation_id))).where(
                        GenerationImage.user_id == user_id
                    )
                )
                or 0
            )
            pages = max((total + per_page - 1) // per_page, 1)
            page = min(max(page, 0), pages - 1)
            ids = list(
                (
                    await session.execute(
                        select(GenerationImage.generation_id)
                        .where(GenerationImage.user_id == user_id)
                        .group_by(GenerationImage.generation_id)
                        .order_by(GenerationImage.generation_id.desc())
                        .offset(page * per_page)
                        .limit(per_page)
                    )
                ).scalars()
            )
            if not ids:
                return HistoryPage([], page, pages, total)
            rows = {
                g.id: g for g in (await session.execute(select(Generation).where(Generation.id.in_(ids)))).scalars()
            }
            images: dict[int, list[SentImage]] = {}
            for stored in (
                await session.execute(
                    select(GenerationImage)
                    .where(GenerationImage.generation_id.in_(ids))
                    .order_by(GenerationImage.generation_id, GenerationImage.position)
                )
            ).scalars():
                images.setdefault(stored.generation_id, []).append(_image(stored))
            items = [_result(rows[gid], images.get(gid, [])) for gid in ids if gid in rows]
            return HistoryPage(items, page, pages, total)

    async def count(self, user_id: int) -> int:
        async with self._sessions() as session:
            value = await session.scalar(
                select(func.count(func.distinct(GenerationImage.generation_id))).where(
                    GenerationImage.user_id == user_id
                )
            )
            return int(value or 0)

    async def clear(self, user_id: int) -> int:
        """Forget the user's stored images (their history, and the originals kept for "📎 Original");
        the generations stay for limits and stats."""
        async with self._sessions.begin() as session:
            await session.execute(delete(OriginalImage).where(OriginalImage.user_id == user_id))
            result = await session.execute(delete(GenerationImage).where(GenerationImage.user_id == user_id))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _image(row: GenerationImage) -> SentImage:
    return SentImage(
        position=row.position,
        chat_id=row.chat_id,
        message_id=row.message_id,
        kind=row.kind,
        file_id=row.file_id,
        file_unique_id=row.file_unique_id,
        width=row.width,
        height=row.height,
        seed=row.seed,
    )


def _result(row: Generation, images: list[SentImage]) -> StoredResult:
    return StoredResult(
        generation_id=row.id,
        user_id=row.user_id,
        prompt=row.prompt,
        model=ModelId(row.model_requested),
        model_used=row.model_used,
        kind=JobKind(row.kind),
        options=ImageOptions(**(row.options or {})),
        input_file_id=row.input_file_id,
        created_at=row.created_at,
        images=images,
    )
