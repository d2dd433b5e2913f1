"""GET /healthz: each dependency checked with a deadline; the answer names only what is down.

Load balancers and `docker compose` act on the status code, operators read the names. Nothing from
an exception reaches the body or the log message: driver errors quote URLs, and URLs hold passwords.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[object]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_TIMEOUT = 2.0
OK, DOWN = "ok", "down"


async def run_check(name: str, check: Check, deadline: float = DEFAULT_TIMEOUT) -> str:
    """Return "ok" when the check returns (anything but False) within the deadline, else "down"."""
    try:
        result = await asyncio.wait_for(check(), deadline)
    except Exception as exc:
        log.warning("Health check %s failed: %s", name, type(exc).__name__)
        return DOWN
    if result is False:
        log.warning("Health check %s failed: returned False", name)
        return DOWN
    return OK


async def run_checks(checks: Mapping[str, Check], deadline: float = DEFAULT_TIMEOUT) -> dict[str, str]:
    """All checks at once, so one slow dependency costs one deadline, not the sum."""
    names = list(checks)
    results = await asyncio.gather(*(run_check(n, checks[n], deadline) for n in names))
    return dict(zip(names, results, strict=True))


def healthz_handler(checks: Mapping[str, Check], *, timeout: float = DEFAULT_TIMEOUT) -> Handler:
    """200 {"status": "ok", "checks": {...}} when every check passes, else 503 with "down" entries."""
    frozen = dict(checks)

    async def healthz(request: web.Request) -> web.Response:
        results = await run_checks(frozen, timeout)
        healthy = all(v == OK for v in results.values())
        body = {"status": OK if healthy else DOWN, "checks": results}
        return web.json_response(body, status=200 if healthy else 503, headers={"Cache-Control": "no-store"})

    return healthz


def database_check(engine: AsyncEngine) -> Check:
    """`SELECT 1` on a pooled connection: proves the pool can reach the server right now."""

    async def check() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return check


class Pingable(Protocol):
    """A redis.asyncio client, or anything else with an async ping."""

    def ping(self, **kwargs: Any) -> Awaitable[Any]: ...


def ping_check(client: Pingable) -> Check:
    """Redis (or a broker's Redis) answers PING."""

    async def check() -> object:
        return await client.ping()

    return check
