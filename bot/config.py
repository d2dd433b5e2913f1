"""Settings from the environment and a `.env` found in the working directory or a parent.

Keys are SecretStr so they never show in a repr, a log line or a validation error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import find_dotenv
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.safety import BlockedTerms, SafetyLevel

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/bot.db"
ASYNC_DRIVERS = frozenset({"sqlite+aiosqlite", "postgresql+asyncpg"})


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line meant for the operator."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A subscriber plan sold for Telegram Stars."""

    days: int
    stars: int

    @property
    def payload(self) -> str:
        return f"sub:{self.days}:{self.stars}"


DEFAULT_PLANS = "30:250"
DEFAULT_INFLIGHT_CAP = "user:1,subscriber:2,admin:0"
DEFAULT_PROVIDER_CONCURRENCY = "gemini-flash:8,flux-dev:4,flux-pro:4,pollinations:1"
LEVELS = ("user", "subscriber", "admin")
PROVIDER_STEPS = ("gemini-flash", "flux-dev", "flux-pro", "pollinations")


def _parse_counts(text: str, names: tuple[str, ...], setting: str) -> dict[str, int]:
    """`name:count` pairs, comma-separated; names not given keep no entry."""
    counts: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, count = part.partition(":")
        name = name.strip().lower()
        if not sep or name not in names or not count.strip().isdigit():
            raise ValueError(f"{setting} must be name:count pairs with names from {', '.join(names)}, not {part!r}")
        counts[name] = int(count)
    return counts


def parse_level_counts(text: str, setting: str) -> dict[str, int]:
    return _parse_counts(text, LEVELS, setting)


def parse_provider_counts(text: str) -> dict[str, int]:
    """Per chain step (model) concurrency shared by every worker; 0 or absent = no limit."""
    aliases = {"gemini": "gemini-flash"}
    normalised = ",".join(
        f"{aliases.get(n.strip().lower(), n.strip())}:{c}" if c else n
        for n, _, c in (p.partition(":") for p in text.split(","))
    )
    return _parse_counts(normalised, PROVIDER_STEPS, "PROVIDER_CONCURRENCY")


MAX_PLAN_DAYS = 3650
MAX_PLAN_STARS = 100000


def parse_plans(text: str) -> tuple[Plan, ...]:
    """`days:stars` pairs, comma-separated; an empty string disables subscriptions."""
    plans = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        days, sep, stars = part.partition(":")
        if not sep or not days.strip().isdigit() or not stars.strip().isdigit():
            raise ValueError(f"SUBSCRIPTION_PLANS must be days:stars pairs like 30:250, not {part!r}")
        plan = Plan(int(days), int(stars))
        if not (1 <= plan.days <= MAX_PLAN_DAYS and 1 <= plan.stars <= MAX_PLAN_STARS):
            raise ValueError(f"SUBSCRIPTION_PLANS entry {part!r} is out of range")
        plans.append(plan)
    return tuple(plans)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,
    )

    bot_token: SecretStr | None = Field(default=None, validation_alias="BOT_TOKEN")
    admin_ids: Annotated[frozenset[int], NoDecode] = Field(default=frozenset(), validation_alias="ADMIN_IDS")
    database_url: str = Field(default=DEFAULT_DATABASE_URL, validation_alias="DATABASE_URL")
    # PostgreSQL only: a black-holed server fails a request after these seconds instead of hanging it.
    db_connect_timeout: float = Field(default=10.0, gt=0, le=600, validation_alias="DB_CONNECT_TIMEOUT")
    db_command_timeout: float = Field(default=30.0, gt=0, le=3600, validation_alias="DB_COMMAND_TIMEOUT")

    gemini_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GEMINI_API_KEY", "GOOGLE_API_KEY")
    )
    gemini_image_model: str = Field(default="gemini-3.1-flash-image", validation_alias="GEMINI_IMAGE_MODEL")
    hf_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("HF_TOKEN", "HUGGINGFACE_API_KEY", "HF_API_KEY")
    )
    replicate_api_token: SecretStr | None = Field(default=None, validation_alias="REPLICATE_API_TOKEN")
    pollinations_api_key: SecretStr | None = Field(default=None, validation_alias="POLLINATIONS_API_KEY")
    # Editing and ⬆️ Upscale on Replicate (REPLICATE_API_TOKEN): an official model, a versioned community one.
    kontext_model: str = Field(
        default="black-forest-labs/flux-kontext-pro",
        pattern=r"^[\w.-]+/[\w.-]+$",
        validation_alias="KONTEXT_MODEL",
    )
    upscale_model: str = Field(
        default="nightmareai/real-esrgan:f121d640bd286e1fdc67f9799164c1d5be36ff74576ee11c803ae5b665dd46aa",
        pattern=r"^[\w.-]+/[\w.-]+(:[0-9a-f]{64})?$",
        validation_alias="UPSCALE_MODEL",
    )

    daily_limit_user: int = Field(default=5, ge=0, validation_alias="DAILY_LIMIT_USER")
    daily_limit_subscriber: int = Field(default=50, ge=0, validation_alias="DAILY_LIMIT_SUBSCRIBER")
    daily_limit_admin: int = Field(default=0, ge=0, validation_alias="DAILY_LIMIT_ADMIN")
    timezone: str = Field(default="UTC", validation_alias="TIMEZONE")

    gemini_timeout: float = Field(default=60.0, gt=0, validation_alias="GEMINI_TIMEOUT")
    hf_timeout: float = Field(default=120.0, gt=0, validation_alias="HF_TIMEOUT")
    pollinations_timeout: float = Field(default=60.0, gt=0, validation_alias="POLLINATIONS_TIMEOUT")
    # A provider answer (image, JSON) longer than this is refused unread; images over ~40 MP too.
    provider_max_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, le=1024**3, validation_alias="PROVIDER_MAX_BYTES"
    )

    telegram_api_url: str = Field(default="https://api.telegram.org", validation_alias="TELEGRAM_API_URL")
    gemini_base_url: str = Field(
        default="https://generativelanguage.googleapis.com", validation_alias="GEMINI_BASE_URL"
    )
    hf_endpoint: str = Field(default="https://huggingface.co", validation_alias="HF_ENDPOINT")
    hf_router_url: str = Field(default="https://router.huggingface.co", validation_alias="HF_ROUTER_URL")
    replicate_base_url: str = Field(default="https://api.replicate.com", validation_alias="REPLICATE_BASE_URL")
    pollinations_base_url: str | None = Field(default=None, validation_alias="POLLINATIONS_BASE_URL")

    subscription_plans: Annotated[tuple[Plan, ...], NoDecode] = Field(
        default_factory=lambda: parse_plans(DEFAULT_PLANS), validation_alias="SUBSCRIPTION_PLANS"
    )
    paysupport_contact: str = Field(default="", validation_alias="PAYSUPPORT_CONTACT")
    broadcast_rate: float = Field(default=20.0, gt=0, le=30, validation_alias="BROADCAST_RATE")

    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")

    # --- Jobs, workers and scaling (see docs/SCALING.md) ---
    bot_mode: Literal["polling", "webhook"] = Field(default="polling", validation_alias="BOT_MODE")
    webhook_url: str | None = Field(default=None, validation_alias="WEBHOOK_URL")
    webhook_secret: SecretStr | None = Field(default=None, validation_alias="WEBHOOK_SECRET")
    web_host: str = Field(default="0.0.0.0", validation_alias="WEB_HOST")
    web_port: int = Field(default=8080, ge=1, le=65535, validation_alias="WEB_PORT")
    metrics: bool = Field(default=False, validation_alias="METRICS")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    redis_namespace: str = Field(
        default="imagebot", pattern=r"^[A-Za-z0-9_.:-]{1,64}$", validation_alias="REDIS_NAMESPACE"
    )
    workers: int = Field(default=64, ge=0, le=10000, validation_alias="WORKERS")
    # 0: by database (see bot.db.default_bulk_slots); bulk work never holds more connections at once.
    user_cache_ttl: float = Field(default=60.0, ge=0, le=3600, validation_alias="USER_CACHE_TTL")
    bulk_db_slots: int = Field(default=0, ge=0, le=1000, validation_alias="BULK_DB_SLOTS")
    job_redelivery_timeout: float = Field(default=60.0, gt=0, validation_alias="JOB_REDELIVERY_TIMEOUT")
    job_max_attempts: int = Field(default=3, ge=1, le=100, validation_alias="JOB_MAX_ATTEMPTS")
    recovery_max_age: float = Field(default=900.0, gt=0, validation_alias="RECOVERY_MAX_AGE")
    shutdown_grace: float = Field(default=8.0, ge=0, validation_alias="SHUTDOWN_GRACE")
    inflight_cap: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=lambda: parse_level_counts(DEFAULT_INFLIGHT_CAP, "INFLIGHT_CAP"),
        validation_alias="INFLIGHT_CAP",
    )
    queue_max_per_user: int = Field(default=3, ge=0, le=100, validation_alias="QUEUE_MAX_PER_USER")
    priority_max_skip: int = Field(default=3, ge=0, le=1000, validation_alias="PRIORITY_MAX_SKIP")
    provider_concurrency: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=lambda: parse_provider_counts(DEFAULT_PROVIDER_CONCURRENCY),
        validation_alias="PROVIDER_CONCURRENCY",
    )
    telegram_rate: float = Field(default=30.0, gt=0, le=1000, validation_alias="TELEGRAM_RATE")
    telegram_chat_rate: float = Field(default=1.0, gt=0, le=100, validation_alias="TELEGRAM_CHAT_RATE")
    telegram_chat_burst: int = Field(default=5, ge=1, le=100, validation_alias="TELEGRAM_CHAT_BURST")
    # Anti-flood: updates per second a user may send (after a burst); the rest are dropped unread. 0 = off.
    flood_rate: float = Field(default=2.0, ge=0, le=1000, validation_alias="FLOOD_RATE")
    flood_burst: int = Field(default=20, ge=1, le=10000, validation_alias="FLOOD_BURST")

    # --- Content safety (bot/safety.py) ---
    safety_level: SafetyLevel = Field(default=SafetyLevel.STANDARD, validation_alias="SAFETY_LEVEL")
    refusal_fallback: bool = Field(default=False, validation_alias="REFUSAL_FALLBACK")
    refusal_alert: int = Field(default=5, ge=0, le=1000, validation_alias="REFUSAL_ALERT")
    blocked_terms_file: Path | None = Field(default=None, validation_alias="BLOCKED_TERMS_FILE")

    # --- Prompt help and describe: chat and vision models through the HF router (bot/assist) ---
    prompt_model: str = Field(default="meta-llama/Llama-3.1-8B-Instruct", validation_alias="PROMPT_MODEL")
    prompt_timeout: float = Field(default=15.0, gt=0, le=300, validation_alias="PROMPT_TIMEOUT")
    vision_model: str = Field(default="Qwen/Qwen2.5-VL-7B-Instruct", validation_alias="VISION_MODEL")
    vision_timeout: float = Field(default=60.0, gt=0, le=600, validation_alias="VISION_TIMEOUT")
    describe_free: bool = Field(default=False, validation_alias="DESCRIBE_FREE")
    # --- Inline mode (handlers/inline.py): where images are uploaded before they replace an inline message ---
    storage_chat_id: int | None = Field(default=None, validation_alias="STORAGE_CHAT_ID")
    # --- OpenAI-compatible HTTP API (bot/web/openai_api.py) ---
    # Keys are stored as HMAC-SHA256 with this secret; unset, API keys (and so the API) are off.
    api_key_secret: SecretStr | None = Field(default=None, validation_alias="API_KEY_SECRET")
    api_public_url: str | None = Field(default=None, validation_alias="API_PUBLIC_URL")  # base of `url` results
    api_result_ttl: int = Field(default=3600, ge=60, le=7 * 86400, validation_alias="API_RESULT_TTL")
    api_timeout: float = Field(default=300.0, gt=0, le=3600, validation_alias="API_TIMEOUT")
    # --- "📎 Original" (bot/services/originals.py): days the provider's untouched bytes are kept; 0 = none ---
    originals_days: int = Field(default=7, ge=0, le=365, validation_alias="ORIGINALS_DAYS")

    @field_validator(
        "gemini_api_key",
        "hf_token",
        "replicate_api_token",
        "pollinations_api_key",
        "pollinations_base_url",
        "webhook_url",
        "webhook_secret",
        "redis_url",
        "blocked_terms_file",
        "storage_chat_id",
        "api_key_secret",
        "api_public_url",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """`KEY=` in .env (as in .env.example) means "not configured", not "an empty key"."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _parse_admin_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError:
                raise ValueError("ADMIN_IDS must be comma-separated numeric Telegram ids") from None
        return value

    @field_validator("subscription_plans", mode="before")
    @classmethod
    def _parse_plans(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_plans(value)
        return value

    @field_validator("inflight_cap", mode="before")
    @classmethod
    def _parse_inflight(cls, value: object) -> object:
        return parse_level_counts(value, "INFLIGHT_CAP") if isinstance(value, str) else value

    @field_validator("provider_concurrency", mode="before")
    @classmethod
    def _parse_concurrency(cls, value: object) -> object:
        return parse_provider_counts(value) if isinstance(value, str) else value

    @field_validator("safety_level", mode="before")
    @classmethod
    def _lower_safety_level(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("blocked_terms_file")
    @classmethod
    def _check_blocked_terms(cls, value: Path | None) -> Path | None:
        """Read and compile the list at start-up, so a bad regular expression stops the bot with its line."""
        if value is not None:
            BlockedTerms.load(value)
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// or rediss:// URL")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be the full public URL Telegram calls, e.g. https://bot.example.com/tg/webhook")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram allows 1-256 characters A-Z, a-z, 0-9, _ and -.
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @model_validator(mode="after")
    def _check_webhook_mode(self) -> Settings:
        if self.bot_mode == "webhook" and (self.webhook_url is None or self.webhook_secret is None):
            raise ValueError("BOT_MODE=webhook needs WEBHOOK_URL and WEBHOOK_SECRET")
        return self

    @property
    def webhook_path(self) -> str:
        """The path Telegram posts to: the one in WEBHOOK_URL."""
        return urlsplit(self.webhook_url or "").path or "/"

    def inflight_cap_for(self, level: str) -> int:
        """How many of a level's jobs may run at once; 0 means no cap."""
        return self.inflight_cap.get(level, 0)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL (e.g. sqlite+aiosqlite:///./data/bot.db)") from None
        if url.drivername not in ASYNC_DRIVERS:
            raise ValueError(f"use an async driver: {' or '.join(sorted(ASYNC_DRIVERS))}")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Moscow)") from None
        return value

    @field_validator(
        "telegram_api_url",
        "gemini_base_url",
        "hf_endpoint",
        "hf_router_url",
        "replicate_base_url",
        "pollinations_base_url",
    )
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None if value is None else value
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("bot_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        token = value.get_secret_value().strip()
        left, sep, right = token.partition(":")
        if not sep or not left.isdigit() or not right:
            raise ValueError("BOT_TOKEN does not look like a Telegram token (123456:ABC...)")
        return SecretStr(token)

    @field_validator("api_key_secret")
    @classmethod
    def _check_api_key_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("API_KEY_SECRET must be at least 16 characters (e.g. `openssl rand -hex 32`)")
        return value

    @property
    def api_enabled(self) -> bool:
        return self.api_key_secret is not None

    def daily_limit(self, level: str) -> int:
        """The configured limit for a level; 0 means unlimited."""
        return {
            "user": self.daily_limit_user,
            "subscriber": self.daily_limit_subscriber,
            "admin": self.daily_limit_admin,
        }[level]


def load_settings(env_file: str | Path | None = None, **overrides: object) -> Settings:
    """Build Settings from the environment and `.env`; raise ConfigError with a one-line reason."""
    if env_file is None:
        found = find_dotenv(usecwd=True)
        env_file = found or None
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg, arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        reason = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        loc = first.get("loc", ())
        if not loc:  # a check across settings names them itself
            raise ConfigError(reason) from None
        raise ConfigError(f"Setting {_setting_name(loc)}: {reason}") from None


def _setting_name(loc: tuple[object, ...]) -> str:
    field = str(loc[0]) if loc else "?"
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return field.upper()
