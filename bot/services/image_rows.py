"""Storing one row per image of a generation (the gallery's file ids, the kept originals)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.sql import insert_for
from models import Generation


async def insert_image_rows(session: AsyncSession, table: Any, generation_id: int, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (each with its `position`) under the generation and its owner, whose id is
    stored on each row so a user's images can be cleared without a join; a second store of the same
    position (a re-run job) changes nothing."""
    user_id = await session.scalar(select(Generation.user_id).where(Generation.id == generation_id))
    owned = [{"generation_id": generation_id, "user_id": user_id, **row} for row in rows]
    statement = insert_for(session, table).values(owned)
    await session.execute(statement.on_conflict_do_nothing(index_elements=["generation_id", "position"]))
