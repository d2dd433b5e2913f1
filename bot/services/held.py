"""The condition every write by a job's worker carries: the job is running and its lease is still ours."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_

from models import Generation, GenerationStatus


def held_by(generation_id: int, owner: str) -> ColumnElement[bool]:
    """True only for this running generation while `owner` holds its lease: a worker whose lease
    another has taken changes nothing."""
    return and_(
        Generation.id == generation_id,
        Generation.lease_owner == owner,
        Generation.status == GenerationStatus.RUNNING,
    )
