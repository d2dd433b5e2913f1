"""Migration 0009: users who wrote to the bot before inline mode existed keep a usable private chat."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, text

from bot.db import alembic_config, create_engine


def _upgrade(connection: Connection, target: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, target)


async def test_existing_users_count_as_having_started_the_bot(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, "0008")
            await conn.execute(
                text(
                    "INSERT INTO users (id, first_name, level, chosen_model, is_banned, ban_notified, blocked_bot,"
                    " created_at, last_seen_at) VALUES (7, 'Ann', 'user', 'gemini-flash', false, false, false,"
                    " '2026-11-01 10:00:00+00:00', '2026-11-30 10:00:00+00:00')"
                )
            )
            await conn.run_sync(_upgrade, "head")
            stamped = (await conn.execute(text("SELECT private_chat_at FROM users WHERE id = 7"))).scalar_one()
            assert stamped is not None and str(stamped).startswith("2026-11-01 10:00:00")
            columns = (await conn.execute(text("SELECT inline_message_id FROM generations"))).all()
            assert columns == []
    finally:
        await engine.dispose()
