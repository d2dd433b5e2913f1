"""Named leases in the database: work that must run on one instance at a time (the subscription
notifier, the recovery sweep) holds one, and another instance takes over when it lapses.

Taking a lease is a single INSERT ... ON CONFLICT DO UPDATE ... WHERE (expired or already ours)
RETURNING, so two instances racing for it can never both win, on SQLite and PostgreSQL alike.
Expiry is judged on the injectable clock, so tests move time instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import delete, or_

from bot.clock import Clock
from bot.db import SessionFactory
from bot.services.sql import insert_for
from models.lease import Lease

log = logging.getLogger(__name__)

MIN_SINGLETON_TTL = timedelta(seconds=30)


def instance_owner() -> str:
    """A lease owner name unique to this process (host, pid and a random part), under 64 characters."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class Leases:
    def __init__(self, sessions: SessionFactory, clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def acquire(self, name: str, owner: str, ttl: timedelta) -> bool:
        """Take or renew the lease for `ttl`; False while another owner holds it unexpired."""
        now = self._clock.now()
        until = now + ttl
        async with self._sessions.begin() as session:
            stmt = insert_for(session, Lease).values(name=name, owner=owner, expires_at=until)
            stmt = stmt.on_conflict_do_update(
                index_elements=[Lease.name],
                set_={"owner": owner, "expires_at": until},
                where=or_(Lease.expires_at < now, Lease.owner == owner),
            ).returning(Lease.owner)
            won = (await session.execute(stmt)).scalar_one_or_none()
        return won == owner

    async def release(self, name: str, owner: str) -> None:
        """Give the lease up at once (only if still ours), so another instance need not wait it out."""
        async with self._sessions.begin() as session:
            await session.execute(delete(Lease).where(Lease.name == name, Lease.owner == owner))

    async def run_singleton(
        self,
        name: str,
        owner: str,
        every: float,
        work: Callable[[], Awaitable[object]],
        *,
        ttl: timedelta | None = None,
    ) -> None:
        """Forever: take the lease, run `work` while holding it, sleep `every` seconds.

        The lease lasts max(3 * every, 30 s) unless `ttl` says otherwise, so one missed round does
        not hand it over; it is renewed while `work` runs. Cancel the task to stop: the lease is
        released so another instance takes over on its next round. A failing round is logged once
        and the loop goes on.
        """
        ttl = ttl if ttl is not None else max(timedelta(seconds=3 * every), MIN_SINGLETON_TTL)
        held = False
        try:
            while True:
                try:
                    held = await self.acquire(name, owner, ttl)
                    if held:
                        await self._work_while_renewing(name, owner, ttl, work)
                except Exception:
                    log.exception("singleton %s: round failed", name)
                await asyncio.sleep(every)
        finally:
            if held:
                await self._release_quietly(name, owner)

    async def _work_while_renewing(
        self, name: str, owner: str, ttl: timedelta, work: Callable[[], Awaitable[object]]
    ) -> None:
        renewer = asyncio.create_task(self._keep_renewing(name, owner, ttl))
        try:
            await work()
        finally:
            renewer.cancel()
            await asyncio.wait([renewer])

    async def _keep_renewing(self, name: str, owner: str, ttl: timedelta) -> None:
        """A round longer than the lease must not let a second instance start the same work."""
        while True:
            await asyncio.sleep(ttl.total_seconds() / 3)
            try:
                if not await self.acquire(name, owner, ttl):
                    log.warning("singleton %s: lease lost while working", name)
                    return
            except Exception as exc:
                log.warning("singleton %s: renewing the lease failed: %s", name, type(exc).__name__)

    async def _release_quietly(self, name: str, owner: str) -> None:
        try:
            await self.release(name, owner)
        except Exception as exc:  # it lapses by itself after ttl
            log.warning("singleton %s: releasing the lease failed: %s", name, type(exc).__name__)
