"""Logging set-up with a last-resort filter that masks every configured secret in every record."""

from __future__ import annotations

import logging
import sys

from bot.config import Settings


class SecretFilter(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        masked = message
        for secret in self._secrets:
            masked = masked.replace(secret, "***")
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self._secrets:
                text = text.replace(secret, "***")
            record.exc_text, record.exc_info = text, None
        return True


def settings_secrets(settings: Settings) -> list[str]:
    values = [
        settings.bot_token,
        settings.gemini_api_key,
        settings.hf_token,
        settings.replicate_api_token,
        settings.pollinations_api_key,
    ]
    secrets = [v.get_secret_value() for v in values if v is not None]
    if settings.bot_token is not None:
        # The token also appears as "bot<token>" in Bot API URLs.
        secrets.append(settings.bot_token.get_secret_value().split(":", 1)[-1])
    return secrets


def setup_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(settings_secrets(settings)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper() if settings.log_level else "INFO")
    for noisy in ("httpx", "httpcore", "httpx2", "aiosqlite", "sqlalchemy.engine", "google_genai", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
