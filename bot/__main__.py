"""Command line: run (default) | worker | api | generate | migrate | doctor. Only wiring lives here."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from bot.config import ConfigError, Settings, load_settings
from bot.logs import setup_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings)
    command = args.command or "run"
    try:
        if command in ("run", "worker", "api"):
            return _run(settings, worker_only=command == "worker", api_only=command == "api")
        if command == "migrate":
            return _migrate(settings, quiet=args.quiet)
        if command == "generate":
            from bot.cli import generate_command

            return asyncio.run(generate_command(settings, args))
        if command == "doctor":
            from bot.doctor import doctor_command

            return asyncio.run(doctor_command(settings, args))
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {command}")
    return 2


def _migrate(settings: Settings, *, quiet: bool = False) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from bot.db import run_migrations_sync

    try:
        run_migrations_sync(settings.database_url)
    except (SQLAlchemyError, OSError) as exc:
        print(f"Could not open the database ({type(exc).__name__}): check DATABASE_URL", file=sys.stderr)
        return 1
    if not quiet:
        print("Database is at the latest schema.")
    return 0


def _migrate_in_child(settings: Settings) -> int | None:
    """Migrate in a short-lived child process, so Alembic and Mako never load into the bot that runs
    for weeks. The child reads the same environment and .env. None: the database is in memory, only
    this process can migrate it (build_services does). Otherwise the child's exit code."""
    from bot.db import is_in_memory

    if is_in_memory(settings.database_url):
        return None
    env = {**os.environ, "DATABASE_URL": settings.database_url}  # this very database, however it was set
    return subprocess.run([sys.executable, "-m", "bot", "migrate", "--quiet"], env=env, check=False).returncode


def _run(settings: Settings, *, worker_only: bool = False, api_only: bool = False) -> int:
    if settings.bot_token is None:
        print("Configuration error: BOT_TOKEN is not set (get one from @BotFather and put it in .env)", file=sys.stderr)
        return 2
    if worker_only and settings.redis_url is None:
        print("Configuration error: `worker` needs REDIS_URL (the shared queue it takes jobs from)", file=sys.stderr)
        return 2
    if api_only and not settings.api_enabled:
        print("Configuration error: `api` needs API_KEY_SECRET (API keys are hashed with it)", file=sys.stderr)
        return 2
    if settings.workers == 0 and settings.redis_url is None:
        print("Configuration error: WORKERS=0 needs REDIS_URL, or nothing would run the jobs", file=sys.stderr)
        return 2
    from aiogram.exceptions import TelegramUnauthorizedError
    from sqlalchemy.exc import SQLAlchemyError

    migrated = _migrate_in_child(settings)
    if migrated:  # the child said why
        return migrated

    from bot.app import BotApp
    from bot.coordination.factory import CoordinationUnavailable

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        app = await BotApp.create(settings, migrate=migrated is None)
        if worker_only:
            await app.run_worker(stop)
        elif api_only:
            await app.run_api(stop)
        elif settings.bot_mode == "webhook":
            await app.run_webhook(stop)
        else:
            await app.run_polling_until(stop)

    try:
        asyncio.run(_main())
    except ConfigError as exc:  # a file a setting names changed after the settings were checked
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    except TelegramUnauthorizedError:
        print("Telegram rejected BOT_TOKEN (401 Unauthorized): check the token from @BotFather", file=sys.stderr)
        return 2
    except CoordinationUnavailable as exc:
        print(f"{exc}: check REDIS_URL", file=sys.stderr)
        return 1
    except (SQLAlchemyError, OSError) as exc:
        print(f"Could not open the database ({type(exc).__name__}): check DATABASE_URL", file=sys.stderr)
        return 1
    except Exception as exc:
        if not _is_redis_error(exc):
            raise
        # No URL or message: either may carry a password.
        print(f"Could not reach Redis ({type(exc).__name__}): check REDIS_URL", file=sys.stderr)
        return 1
    return 0


def _is_redis_error(exc: BaseException) -> bool:
    """redis is imported only with REDIS_URL (about 6 MiB otherwise never loaded)."""
    errors = sys.modules.get("redis.exceptions")
    return errors is not None and isinstance(exc, errors.RedisError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Tiered image-generation Telegram bot")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="start the bot: polling or webhook (BOT_MODE), with in-process workers (default)")
    sub.add_parser("worker", help="run workers only (needs REDIS_URL): take jobs from the shared queue")
    sub.add_parser("api", help="serve the OpenAI-compatible HTTP API on WEB_PORT (needs API_KEY_SECRET), no chat")
    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--quiet", action="store_true", help="print nothing when all went well")
    gen = sub.add_parser("generate", help="generate images without Telegram")
    gen.add_argument("prompt")
    gen.add_argument("-m", "--model", default="gemini-flash", help="gemini-flash | flux-dev | flux-pro | pollinations")
    gen.add_argument("-n", type=int, default=1, dest="count", help="number of images (1-4)")
    gen.add_argument("--size", help="WIDTHxHEIGHT, e.g. 1024x768")
    gen.add_argument("--aspect", help="aspect ratio such as 16:9 (when --size is not given)")
    gen.add_argument("--seed", type=int)
    gen.add_argument("--negative", help="negative prompt")
    gen.add_argument("-o", "--output", help="file path (numbered when -n > 1); default ./generated/")
    doc = sub.add_parser("doctor", help="check which providers and models the configured keys reach")
    doc.add_argument("-m", "--model", action="append", help="only these models (repeatable)")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
