"""One generation request and its outcome: the job's truth (the queue carries only its id), and the
audit trail behind /profile, stats and crash recovery."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, StrEnumColumn, UtcDateTime


class GenerationStatus(StrEnum):
    """waiting (over the user's in-flight cap, not yet on the queue) -> queued -> running -> a final one."""

    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    DELIVERED = "delivered"
    FAILED = "failed"  # every provider failed, or the job was given up after too many attempts
    UNDELIVERED = "undelivered"  # made, but Telegram would not take it
    INTERRUPTED = "interrupted"  # cut short and too old to resume: refunded
    CANCELLED = "cancelled"  # withdrawn by the user before a worker took it
    REFUSED = "refused"  # a provider's content filter or the word list declined it: refunded, reason kept


class JobKind(StrEnum):
    """What a job makes. Every kind goes through the same levels, limits, queue and refunds."""

    GENERATE = "generate"  # an image from a prompt (also Regenerate / Other model: parent_id is the original)
    EDIT = "edit"  # input_file_id changed by the prompt as an instruction
    UPSCALE = "upscale"  # input_file_id enlarged
    DESCRIBE = "describe"  # input_file_id described in words by a vision model


UNFINISHED = (GenerationStatus.WAITING, GenerationStatus.QUEUED, GenerationStatus.RUNNING)
ACTIVE = (GenerationStatus.QUEUED, GenerationStatus.RUNNING)


class Generation(Base):
    __tablename__ = "generations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="SET NULL"), index=True)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16), default="telegram")  # telegram | cli | api
    prompt: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16), default=JobKind.GENERATE, server_default=JobKind.GENERATE.value)
    # The generation this one continues (Regenerate, Other model, Edit, Upscale of a delivered result).
    parent_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("generations.id", ondelete="SET NULL"))
    # Telegram file_id of the photo a job works on (edit, upscale, describe); the worker downloads it.
    input_file_id: Mapped[str | None] = mapped_column(String(256))
    # What the job really worked from, written by the worker before the provider call so a re-run
    # reuses it: the prompt after prompt help (generate), or the description a vision model gave (describe).
    prompt_used: Mapped[str | None] = mapped_column(Text)
    model_requested: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str | None] = mapped_column(String(32))
    model_used: Mapped[str | None] = mapped_column(String(128))
    # True when a model other than the requested one made the image.
    fallback: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[GenerationStatus] = mapped_column(
        StrEnumColumn(GenerationStatus), default=GenerationStatus.QUEUED, index=True
    )
    error_class: Mapped[str | None] = mapped_column(String(64))
    # Why a refused generation was refused, in the provider's words (e.g. "finishReason IMAGE_SAFETY").
    refusal_reason: Mapped[str | None] = mapped_column(String(300))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    # The quota day a unit was reserved on (None when nothing was reserved), so release hits that day.
    quota_day: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    # --- the job -------------------------------------------------------------------------------
    units: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # reserved for this generation
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)  # ImageOptions as a dict
    level: Mapped[str] = mapped_column(String(16), default="user", server_default="user")  # at reservation
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # higher is taken first
    locale: Mapped[str | None] = mapped_column(String(16))  # the language to answer in
    job_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # times a worker took it
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    enqueued_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # last put on the queue
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # first taken by a worker
    status_message_id: Mapped[int | None] = mapped_column(BigInteger)  # "🎨 Generating…", edited and deleted
    sent_message_id: Mapped[int | None] = mapped_column(BigInteger)  # the delivered image: never refunded
    # Inline mode: the message in someone's chat that becomes the image (edited, never sent to).
    # Unique: Telegram may deliver a chosen result twice (a webhook retried after a crash); one job each.
    inline_message_id: Mapped[str | None] = mapped_column(String(128), index=True, unique=True)
