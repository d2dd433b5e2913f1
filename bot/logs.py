"""Logging set-up with a last-resort filter that masks every configured secret in every record.

The filter sits on every handler, not only ours: libraries may bring their own (huggingface_hub adds a
stderr handler at import, which printed tokens verbatim). huggingface_hub's is removed so its records
reach the console once, through ours; any other handler present at set-up gets the filter too.
"""

from __future__ import annotations

import logging
import sys

from bot.config import Settings

MASK = "***"
MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words
ROUTED_LIBRARIES = ("huggingface_hub",)  # loggers whose own handlers are replaced by propagation to ours
PER_UPDATE_LOGGER = "aiogram.event"  # "Update id=… is handled. Duration … ms by bot id=…"


class SecretFilter(logging.Filter):
    """Masks the message, the exception text and the stack of a record. Never raises: a filter's
    exception would reach whoever called logger.warning(), which is not the place for it."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._mask(record)
        except Exception as exc:  # the record is dropped to a safe line rather than raised
            record.msg, record.args = f"(a log record could not be masked: {type(exc).__name__})", None
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True

    def _mask(self, record: logging.LogRecord) -> None:
        record.msg, record.args = self._hide(_message(record)), None  # formatted once: no handler re-formats
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text, record.exc_info = logging.Formatter().formatException(record.exc_info), None
        if record.exc_text:
            record.exc_text = self._hide(record.exc_text)
        if record.stack_info:
            record.stack_info = self._hide(record.stack_info)

    def _hide(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


def _message(record: logging.LogRecord) -> str:
    """The formatted message, or for a malformed call (`log.warning("%s %s", one)`) its parts."""
    try:
        return record.getMessage()
    except Exception as exc:
        return f"{record.msg!s} {record.args!r} (malformed log call: {type(exc).__name__})"


def settings_secrets(settings: Settings) -> list[str]:
    values = [
        settings.bot_token,
        settings.gemini_api_key,
        settings.hf_token,
        settings.replicate_api_token,
        settings.pollinations_api_key,
        settings.api_key_secret,
    ]
    secrets = [v.get_secret_value() for v in values if v is not None]
    if settings.bot_token is not None:
        # The token also appears as "bot<token>" in Bot API URLs.
        secrets.append(settings.bot_token.get_secret_value().split(":", 1)[-1])
    return secrets


def setup_logging(settings: Settings) -> None:
    secret_filter = SecretFilter(settings_secrets(settings))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(secret_filter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper() if settings.log_level else "INFO")
    for noisy in ("httpx", "httpcore", "httpx2", "aiosqlite", "sqlalchemy.engine", "google_genai", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # aiogram logs one INFO line per handled update: under a crowd that line (formatted and masked)
    # was about a sixth of a command's CPU (benchmarks/dispatch_profile.py), and /metrics counts the
    # updates anyway. It shows with LOG_LEVEL=DEBUG; its warnings and errors always do.
    quiet = root.getEffectiveLevel() > logging.DEBUG
    logging.getLogger(PER_UPDATE_LOGGER).setLevel(logging.WARNING if quiet else logging.NOTSET)
    route_libraries_through_root()
    filter_every_handler(secret_filter)


def route_libraries_through_root() -> None:
    """huggingface_hub adds a stderr handler of its own at import (and propagates too): import it now so
    the handler exists, then drop it; its records reach the console once, masked, through the root's."""
    # Light: four modules (the package's lazy __init__, constants, utils, utils.logging), not the
    # inference package the providers import at their first call.
    import huggingface_hub.utils.logging  # noqa: F401  (installs the library's handler)

    for name in ROUTED_LIBRARIES:
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True


def filter_every_handler(secret_filter: logging.Filter) -> None:
    """Every handler configured so far, whoever added it, masks secrets too."""
    manager = logging.Logger.manager
    loggers = [logging.getLogger(), *(lg for lg in manager.loggerDict.values() if isinstance(lg, logging.Logger))]
    handlers = {id(h): h for lg in loggers for h in lg.handlers}
    for handler in handlers.values():
        if secret_filter not in handler.filters:
            handler.addFilter(secret_filter)
