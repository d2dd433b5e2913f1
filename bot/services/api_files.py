"""Image bytes handed over by the HTTP API, kept in the database so any instance can serve them.

Results: the worker stores a job's images here instead of sending them to Telegram; the front end
that waits for the job reads them back, and `url` results are served by their id. Inputs: the photo
sent to /v1/images/edits, referenced from the job as `input_file_id = "api:<id>"`. Ids come from
`secrets.token_urlsafe` (256 bits): the URL is the only credential, and it expires.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from bot.clock import Clock
from bot.db import SessionFactory
from models import ApiFile, ApiFilePurpose

INPUT_REF_PREFIX = "api:"  # input_file_id of an API edit job: the photo is here, not on Telegram


@dataclass(frozen=True, slots=True)
class StoredImage:
    id: str
    data: bytes
    mime_type: str


def input_ref(file_id: str) -> str:
    return f"{INPUT_REF_PREFIX}{file_id}"


def is_input_ref(input_file_id: str | None) -> bool:
    return input_file_id is not None and input_file_id.startswith(INPUT_REF_PREFIX)


class ApiFiles:
    def __init__(self, sessions: SessionFactory, clock: Clock, ttl_seconds: int) -> None:
        self._sessions = sessions
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)

    async def store_results(self, generation_id: int, images: Sequence[tuple[bytes, str]]) -> list[str]:
        """The job's images, in order; a job run again replaces what an earlier run stored."""
        now = self._clock.now()
        ids = [secrets.token_urlsafe(32) for _ in images]
        async with self._sessions.begin() as session:
            await session.execute(
                delete(ApiFile).where(ApiFile.generation_id == generation_id, ApiFile.purpose == ApiFilePurpose.RESULT)
            )
            for position, (file_id, (data, mime)) in enumerate(zip(ids, images, strict=True)):
                session.add(
                    ApiFile(
                        id=file_id,
                        generation_id=generation_id,
                        purpose=ApiFilePurpose.RESULT,
                        position=position,
                        mime_type=mime,
                        data=data,
                        created_at=now,
                        expires_at=now + self._ttl,
                    )
                )
        return ids

    async def store_input(self, data: bytes, mime_type: str, keep_for: timedelta) -> str:
        """An uploaded photo, kept `keep_for` (long enough for its job to wait in line and run)."""
        now = self._clock.now()
        file_id = secrets.token_urlsafe(32)
        async with self._sessions.begin() as session:
            session.add(
                ApiFile(
                    id=file_id,
                    purpose=ApiFilePurpose.INPUT,
                    position=0,
                    mime_type=mime_type,
                    data=data,
                    created_at=now,
                    expires_at=now + keep_for,
                )
            )
        return file_id

    async def results(self, generation_id: int) -> list[StoredImage]:
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(ApiFile)
                    .where(ApiFile.generation_id == generation_id, ApiFile.purpose == ApiFilePurpose.RESULT)
                    .order_by(ApiFile.position)
                )
            ).scalars()
            return [StoredImage(row.id, row.data, row.mime_type) for row in rows]

    async def get(self, file_id: str, purpose: ApiFilePurpose = ApiFilePurpose.RESULT) -> StoredImage | None:
        """A file that has not expired, or None."""
        async with self._sessions() as session:
            row = await session.get(ApiFile, file_id)
            if row is None or row.purpose != purpose or row.expires_at <= self._clock.now():
                return None
            return StoredImage(row.id, row.data, row.mime_type)

    async def input_for(self, input_file_id: str) -> StoredImage | None:
        """The photo an API edit job works on (its `input_file_id` is `api:<id>`)."""
        if not is_input_ref(input_file_id):
            return None
        return await self.get(input_file_id.removeprefix(INPUT_REF_PREFIX), ApiFilePurpose.INPUT)

    async def purge(self) -> int:
        """Delete expired files; run periodically on one instance."""
        async with self._sessions.begin() as session:
            result = await session.execute(delete(ApiFile).where(ApiFile.expires_at <= self._clock.now()))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
