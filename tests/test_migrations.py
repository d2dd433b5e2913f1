"""The migrations and the ORM models describe the same schema: a column added to one only fails here."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from bot.db import SessionFactory, create_engine, run_migrations
from models import Base


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_sqlite_schema_matches_the_models(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await run_migrations(engine)
        async with engine.connect() as conn:
            diff = await conn.run_sync(_differences)
    finally:
        await engine.dispose()
    assert diff == []


async def test_migrated_postgres_schema_matches_the_models(pg_sessions: SessionFactory) -> None:
    async with pg_sessions.begin() as session:
        connection = await session.connection()
        diff = await connection.run_sync(_differences)
    assert diff == []
