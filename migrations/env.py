"""Alembic environment. Run from code on a shared connection (bot start-up, `python -m bot migrate`)
or from the `alembic` CLI, which builds its own engine from DATABASE_URL / .env."""

from __future__ import annotations

import asyncio
import logging.config

from alembic import context
from sqlalchemy import Connection

from models import Base

config = context.config
target_metadata = Base.metadata


def _do_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_cli() -> None:
    from bot.config import load_settings
    from bot.db import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url") or load_settings().database_url)
    async with engine.begin() as conn:
        await conn.run_sync(_do_run)
    await engine.dispose()


def run_online() -> None:
    shared = config.attributes.get("connection")
    if shared is not None:
        _do_run(shared)
        return
    # Stock fileConfig() would silence aiogram's loggers; only the CLI path configures logging.
    if config.config_file_name and config.attributes.get("configure_logging", True):
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)
    asyncio.run(_run_cli())


if context.is_offline_mode():
    run_offline()
else:
    run_online()
