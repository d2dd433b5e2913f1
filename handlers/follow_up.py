"""Starting a job from a button (use my own words, generate from a description): the tail of the
prompt flow in handlers/generate.py, for a job submitted by a button instead of a text message."""

from __future__ import annotations

from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.catalog import ModelId
from bot.clock import Clock
from bot.queue import JobQueue
from bot.services.jobs import GenerationJobs, SubmitStatus, Submitted
from bot.services.users import UserView
from bot.texts import model_title
from handlers.generate import _enqueue_or_withdraw, _refused


async def start_job(
    target: Message,
    submitted: Submitted,
    user: UserView,
    model: ModelId,
    jobs: GenerationJobs,
    queue: JobQueue,
    clock: Clock,
) -> int | None:
    """Say it started (or why not) in `target`'s chat and put it on the queue; its id when accepted."""
    if not submitted.accepted or submitted.generation_id is None:
        await _refused(target, submitted, user, clock)
        return None
    if submitted.status is SubmitStatus.QUEUED:
        text = _("🎨 Generating with {model}…").format(model=model_title(model))
    else:
        text = _("⏳ Queued with {model}: it starts when your current image is done.").format(model=model_title(model))
    status: Message | None = None
    try:
        status = await target.answer(text)
        await jobs.set_status_message(submitted.generation_id, status.message_id)
    finally:  # the job is paid for: it runs even if the status line could not be shown
        if submitted.status is SubmitStatus.QUEUED:
            await _enqueue_or_withdraw(submitted.generation_id, status, jobs, queue)
    return submitted.generation_id
