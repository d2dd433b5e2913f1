"""API keys for the HTTP API: made, listed and revoked by their user in the bot; checked on every call.

A key is `sk-img-<prefix>-<secret>`. The prefix is not secret: it finds the row (and tells keys apart in
/apikey). Only HMAC-SHA256(API_KEY_SECRET, key) is stored, so a copy of the database cannot be replayed
without the server secret; the comparison is constant-time. Nothing here knows aiogram or aiohttp.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from bot.clock import Clock
from bot.db import SessionFactory
from models import ApiKey

KEY_PREFIX = "sk-img-"
PREFIX_CHARS = 12  # hex
MAX_KEYS_PER_USER = 5
# last_used_at is rewritten at most this often, so a busy key does not write on every call.
TOUCH_EVERY_SECONDS = 60


@dataclass(frozen=True, slots=True)
class ApiKeyView:
    id: int
    prefix: str
    created_at: datetime
    last_used_at: datetime | None

    @property
    def shown(self) -> str:
        """How the key is named in lists: its public part only."""
        return f"{KEY_PREFIX}{self.prefix}-…"


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: str  # the whole key: shown to its user once, never stored
    view: ApiKeyView


class TooManyKeys(Exception):
    """The user has MAX_KEYS_PER_USER live keys already."""


class ApiKeyService:
    def __init__(self, sessions: SessionFactory, clock: Clock, secret: str | None) -> None:
        self._sessions = sessions
        self._clock = clock
        self._secret = secret.encode() if secret else None

    @property
    def enabled(self) -> bool:
        return self._secret is not None

    def _digest(self, key: str) -> str:
        assert self._secret is not None
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()

    async def create(self, user_id: int) -> CreatedKey:
        if not self.enabled:
            raise RuntimeError("API keys are disabled (API_KEY_SECRET is not set)")
        now = self._clock.now()
        async with self._sessions.begin() as session:
            live = (
                await session.execute(
                    select(func.count()).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
                )
            ).scalar_one()
            if live >= MAX_KEYS_PER_USER:
                raise TooManyKeys
            prefix = secrets.token_hex(PREFIX_CHARS // 2)
            key = f"{KEY_PREFIX}{prefix}-{secrets.token_urlsafe(32)}"
            row = ApiKey(user_id=user_id, prefix=prefix, digest=self._digest(key), created_at=now)
            session.add(row)
            await session.flush()
            return CreatedKey(key, _view(row))

    async def list(self, user_id: int) -> list[ApiKeyView]:
        """The user's live keys, oldest first."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None)).order_by(ApiKey.id)
                )
            ).scalars()
            return [_view(row) for row in rows]

    async def revoke(self, user_id: int, key_id: int) -> bool:
        """Only the key's own user may revoke it; False when it is not theirs or already revoked."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=self._clock.now())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def authenticate(self, key: str) -> int | None:
        """The user a presented key acts as, or None (unknown, malformed, revoked, or keys disabled)."""
        if not self.enabled or not key.startswith(KEY_PREFIX) or len(key) > 200 or not key.isascii():
            return None
        prefix = key[len(KEY_PREFIX) : len(KEY_PREFIX) + PREFIX_CHARS]
        async with self._sessions() as session:
            row = (
                await session.execute(select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None)))
            ).scalar_one_or_none()
        # Hash even when no row matched, so timing does not tell a known prefix from an unknown one.
        digest = self._digest(key)
        if row is None or not hmac.compare_digest(digest, row.digest):
            return None
        now = self._clock.now()
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() >= TOUCH_EVERY_SECONDS:
            async with self._sessions.begin() as session:
                await session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        return row.user_id


def _view(row: ApiKey) -> ApiKeyView:
    return ApiKeyView(row.id, row.prefix, row.created_at, row.last_used_at)
