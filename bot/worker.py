"""A worker runs jobs: claim a row under a lease, call the chain, deliver, settle, start what waits.

It knows no Dispatcher: a Bot to send with (through `Delivery`), the services, and the row.

Delivery window: the image is sent first and its message id written right after (`settle_sent`,
which in the same write releases the units of images that did not reach the user and closes the job).
A crash between the two (milliseconds) is the one case where a job can run again and the user get
the image twice; it is never lost and never charged twice. Once the message id is written, the job
is never run again or refunded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta

from bot.alerts import RefusalAlerts
from bot.api_results import API_SOURCE, ApiResults
from bot.bulk import bulk_work, urgent_work
from bot.clock import Clock
from bot.config import Settings
from bot.coordination.leases import instance_owner
from bot.delivery import Delivery, Sent, kept_images
from bot.describing import DescribeRunner
from bot.draining import drain
from bot.faults import is_outage
from bot.originals import originals_to_keep
from bot.photo_jobs import PHOTO_KINDS, PhotoJobs
from bot.prompt_step import PromptStep
from bot.queue import JobQueue
from bot.services.audience import AudienceService
from bot.services.gallery import GalleryService
from bot.services.generation import FailureReason, GenerationFailed, GenerationResult, GenerationService
from bot.services.jobs import GenerationJobs, JobView, KeepStep, Settled
from bot.services.originals import OriginalsService
from bot.services.quota import QuotaService
from bot.web.metrics import Metrics
from models import GenerationStatus, JobKind

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        *,
        jobs: GenerationJobs,
        generation: GenerationService,
        delivery: Delivery,
        queue: JobQueue,
        quota: QuotaService,
        audience: AudienceService,
        settings: Settings,
        clock: Clock,
        owner: str | None = None,
        metrics: Metrics | None = None,
        alerts: RefusalAlerts | None = None,
        prompts: PromptStep | None = None,
        describer: DescribeRunner | None = None,
        photo_jobs: PhotoJobs | None = None,
        gallery: GalleryService | None = None,
        api_results: ApiResults | None = None,
        originals: OriginalsService | None = None,
    ) -> None:
        self._jobs = jobs
        self._generation = generation
        self._delivery = delivery
        self._queue = queue
        self._quota = quota
        self._audience = audience
        self._clock = clock
        self.owner = owner or instance_owner()
        self._metrics = metrics or Metrics()
        self._alerts = alerts
        self._prompts = prompts  # prompt help before a generate job's provider call
        self._describer = describer  # describe jobs (JobKind.DESCRIBE)
        self._photo_jobs = photo_jobs
        self._gallery = gallery
        self._api_results = api_results
        self._originals = originals
        self._lease = timedelta(seconds=settings.job_redelivery_timeout)
        self._renew_every = max(settings.job_redelivery_timeout / 3, 0.05)
        self._slots = asyncio.Semaphore(max(settings.workers, 1))
        self._tasks: set[asyncio.Task[object]] = set()
        self._closing = False  # stop() began: take no new job

    # --- the queue calls this ------------------------------------------------------------------

    async def handle(self, generation_id: int) -> bool:
        """Run the most deserving job; True when this message may be acknowledged."""
        if self._closing:
            # taskiq may still start a message it fetched before the stop: leave it to another worker.
            # Claimed now, its job would outlive the grace period and the database, and run twice.
            return False
        async with self._tracked(), self._slots:
            with bulk_work():  # a crowd of jobs must not take every database connection
                return await self._handle(generation_id)

    async def _handle(self, generation_id: int) -> bool:
        try:
            claimed = await self._jobs.claim(self.owner, self._lease, preferred=generation_id)
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("message for generation %s: database unreachable (%s)", generation_id, type(exc).__name__)
            return False  # redelivered (or swept up) once the database is back
        if claimed is None:  # done, cancelled, missing, or held by a live worker
            log.info("message for generation %s: nothing to run (done, cancelled or held)", generation_id)
            return True
        if isinstance(claimed, Settled):
            await self._settled(claimed)
            return True
        try:
            if claimed.kind is JobKind.DESCRIBE:
                await self._run_describe(claimed)
            else:
                await self._run(claimed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The lease lapses and recovery puts the job back (at most JOB_MAX_ATTEMPTS times).
            if is_outage(exc):
                log.warning("generation %s: database or Redis unreachable (%s)", claimed.id, type(exc).__name__)
            else:
                log.exception("generation %s: worker failed", claimed.id)
            return False
        return True

    # --- lifecycle -----------------------------------------------------------------------------

    async def stop(self, grace: float) -> None:
        """Let running jobs finish for `grace` seconds; the rest go back on the queue, not refunded."""
        self._closing = True
        cut = await drain(self._tasks, grace, "job(s)")
        if cut:
            log.info("%d job(s) left on the queue for the next worker", cut)

    @contextlib.asynccontextmanager
    async def _tracked(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            yield
        finally:
            self._tasks.discard(task)

    # --- one job -------------------------------------------------------------------------------

    async def _run(self, job: JobView) -> None:
        if job.enqueued_at is not None:
            self._metrics.job_started((self._clock.now() - job.enqueued_at).total_seconds())
        if job.attempt > 1:
            self._metrics.redelivered()
        with self._metrics.in_flight():
            settled, outcome, sent = await self._work(job)
        if isinstance(outcome, GenerationResult):
            fallback = outcome.first.step.value if outcome.fallback_used else None
            provider: str | None = outcome.first.provider
        else:
            fallback, provider = None, None
        # Sent and recorded, then the lease lapsed before the last write: still this worker's delivery
        # (whoever claims the job next closes it as delivered without counting it again).
        status = settled.status.value if settled is not None else "delivered" if sent else "lease_lost"
        self._metrics.job_finished(job.model.value, provider, status, outcome.latency_ms / 1000, fallback)
        if settled is not None:
            await self._queue.enqueue_many(settled.promoted)

    async def _work(self, job: JobView) -> tuple[Settled | None, GenerationResult | GenerationFailed, bool]:
        """Run the chain and settle; also whether this worker recorded the job as sent."""
        renewer = asyncio.create_task(self._keep_lease(job.id), name=f"lease-{job.id}")
        sent = False
        try:
            async with self._delivery.progress(job):
                prompt = await self._prompts.prompt_for(job, self.owner) if self._prompts is not None else job.prompt
                outcome = await self._outcome(job, prompt)
            if isinstance(outcome, GenerationFailed) and outcome.reason is FailureReason.REFUSED:
                settled = await self._jobs.finish(job.id, self.owner, GenerationStatus.REFUSED, outcome)
                if settled is not None:
                    await self._delivery.clear_status(job.chat_id, job.status_message_id)
                    await self._delivery.refused(job)
                    await self._alert(job)
            elif isinstance(outcome, GenerationFailed):
                settled = await self._jobs.finish(job.id, self.owner, GenerationStatus.FAILED, outcome)
                if settled is not None:
                    await self._delivery.clear_status(job.chat_id, job.status_message_id)
                    await self._delivery.failed(job, outcome)
            else:
                # Once sending starts, see it through: a stop now must not lose or repeat the image.
                delivering = asyncio.ensure_future(self._deliver(job, outcome, prompt))
                try:
                    settled, sent = await asyncio.shield(delivering)
                except asyncio.CancelledError:
                    await delivering
                    raise
        except asyncio.CancelledError:
            await asyncio.shield(self._hand_back(job.id))
            raise
        finally:
            renewer.cancel()
        return settled, outcome, sent

    async def _run_describe(self, job: JobView) -> None:
        """A describe job (bot/describing.py) under the same lease, hand-back and promotion as any job."""
        if self._describer is None:  # never an image from the placeholder prompt: refunded instead
            log.error("generation %s: a describe job, but this worker cannot describe", job.id)
            settled = await self._jobs.finish(
                job.id, self.owner, GenerationStatus.FAILED, None, error_class="NoDescriber"
            )
            if settled is not None:
                await self._delivery.clear_status(job.chat_id, job.status_message_id)
                await self._queue.enqueue_many(settled.promoted)
            return
        if job.enqueued_at is not None:
            self._metrics.job_started((self._clock.now() - job.enqueued_at).total_seconds())
        started = time.monotonic()
        renewer = asyncio.create_task(self._keep_lease(job.id), name=f"lease-{job.id}")
        try:
            with self._metrics.in_flight():
                settled = await self._describer.run(job, self.owner)
        except asyncio.CancelledError:
            await asyncio.shield(self._hand_back(job.id))
            raise
        finally:
            renewer.cancel()
        status = settled.status.value if settled is not None else "lease_lost"
        provider = "hf-router" if status == GenerationStatus.DELIVERED.value else None
        self._metrics.job_finished(JobKind.DESCRIBE.value, provider, status, time.monotonic() - started, None)
        if settled is not None:
            await self._queue.enqueue_many(settled.promoted)

    async def _outcome(self, job: JobView, prompt: str) -> GenerationResult | GenerationFailed:
        """A prompt runs the chain (from `prompt`, after prompt help); an edit or upscale works on its
        photo (bot/photo_jobs.py)."""
        if job.kind in PHOTO_KINDS:
            if self._photo_jobs is None:  # a worker built without one: no charge, "not available"
                return GenerationFailed(job.model, FailureReason.NO_PROVIDER, [])
            return await self._photo_jobs.run(job)
        return await self._generation.generate(dataclasses.replace(job.request, prompt=prompt))

    async def _alert(self, job: JobView) -> None:
        """The job is settled already: a failing alert is logged, never a reason to run the job again."""
        if self._alerts is None or job.user_id is None:
            return
        try:
            await self._alerts.after_refusal(job.user_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("generation %s: refusal alert not sent (%s)", job.id, type(exc).__name__)

    async def _hand_back(self, generation_id: int) -> None:
        """Stopping mid-job: the row goes back to queued and, on a shared queue, a new message says so.

        The message this worker took stays pending under its name, and taskiq-redis reclaims pending
        messages only when new ones arrive: without a new message the job would wait for the
        stale-job sweep (10 × JOB_REDELIVERY_TIMEOUT). In memory, the next start-up resumes it.
        """
        if not await self._jobs.put_back(generation_id, self.owner) or not self._queue.durable:
            return
        try:
            await self._queue.enqueue(generation_id)
        except Exception as exc:  # the sweep still finds it
            log.warning("generation %s: put back, but not re-enqueued (%s)", generation_id, type(exc).__name__)

    async def _deliver(
        self, job: JobView, result: GenerationResult, prompt_used: str | None = None
    ) -> tuple[Settled | None, bool]:
        """Send and settle; the flag says the sent message id was recorded by this worker."""
        if job.source == API_SOURCE and self._api_results is not None:  # an HTTP API caller waits for it
            return await self._api_results.deliver(job, result, self.owner, self._lease)
        made = len(result.images)
        left, limit = await self._left_after(job, made)
        # The lease may have lapsed while the provider worked (a stalled process or database): then
        # another worker has the job and will send it. Renewing here also keeps it ours while sending.
        if not await self._jobs.renew(job.id, self.owner, self._lease):
            log.warning("generation %s: lease lost before sending; left to its new holder", job.id)
            return None, False
        if job.chat_id is None:
            log.warning("generation %s: image not delivered (no chat); unit released", job.id)
            settled = await self._jobs.finish(
                job.id, self.owner, GenerationStatus.UNDELIVERED, result, error_class="LookupError"
            )
            return settled, False
        upscale = self._generation.can_upscale()
        sent = await self._delivery.send_images(job, result, left, limit, upscale=upscale, prompt_used=prompt_used)
        if sent.first is None:
            return await self._undelivered(job, result, sent), False
        delivered = len(sent.message_ids)
        # One write records the delivery, releases the units of images that did not go, keeps what the
        # buttons and /history need, and closes the job.
        keep = self._keep_steps(job, result, sent)
        settled, marked = await self._jobs.settle_sent(
            job.id, self.owner, sent.first, result, delivered=delivered, keep=keep
        )
        if marked and delivered > 1:  # several images get their buttons once their file ids are kept
            helped = prompt_used not in (None, job.prompt)
            await self._delivery.result_buttons(job, delivered, upscale=upscale, original_prompt=helped)
        await self._delivery.clear_status(job.chat_id, job.status_message_id)
        if sent.failure is not None and not sent.blocked:
            log.warning("generation %s: %d of %d image(s) not delivered (%s)", job.id, made - delivered, made,
                        type(sent.failure).__name__)  # fmt: skip
            await self._delivery.partly_delivered(job, made - delivered)
        return settled, marked

    def _keep_steps(self, job: JobView, result: GenerationResult, sent: Sent) -> list[KeepStep]:
        """The file ids the buttons and /history use, and the untouched originals for 📎 Original.
        Everything is worked out inside the step: whatever fails there is logged, never a reason to
        lose the record of the delivery (and send the image again)."""
        gallery, originals = self._gallery, self._originals
        steps = []
        if gallery is not None:
            steps.append(
                KeepStep(
                    "images not kept for buttons and /history",
                    lambda session: gallery.record(job.id, kept_images(sent.messages, result), session=session),
                )
            )
        if originals is not None:
            steps.append(
                KeepStep(
                    "originals not kept for 📎 Original",
                    lambda session: originals.keep(job.id, originals_to_keep(sent.messages, result), session=session),
                )
            )
        return steps

    async def _undelivered(self, job: JobView, result: GenerationResult, sent: Sent) -> Settled | None:
        """Nothing reached the chat: every unit comes back, and the user hears it was Telegram."""
        error_class = type(sent.failure).__name__
        if sent.blocked:  # an expected event, not an error: one line, no traceback
            log.info("generation %s: user %s blocked the bot; unit released", job.id, job.user_id)
            if job.user_id is not None:
                await self._audience.set_blocked(job.user_id, True)
            return await self._jobs.finish(
                job.id, self.owner, GenerationStatus.UNDELIVERED, result, error_class=error_class
            )
        log.warning("generation %s: image not delivered (%s); unit released", job.id, error_class)
        settled = await self._jobs.finish(
            job.id, self.owner, GenerationStatus.UNDELIVERED, result, error_class=error_class
        )
        if settled is not None:
            await self._delivery.clear_status(job.chat_id, job.status_message_id)
            await self._delivery.undelivered(job)
        return settled

    async def _left_after(self, job: JobView, made: int) -> tuple[int | None, int]:
        """Images left today as they will stand once units that made no image are back."""
        if job.user_id is None:
            return None, 0
        status = await self._quota.status(job.user_id, job.level)
        if status.limit == 0:
            return None, 0
        used = status.used - max(job.units - made, 0)
        return max(status.limit - used, 0), status.limit

    async def _keep_lease(self, generation_id: int) -> None:
        """Renew while the job runs, so a long provider call is not taken by a second worker."""
        with urgent_work():  # a renewal must not wait behind the crowd of jobs it keeps alive
            await self._renew_until_done(generation_id)

    async def _renew_until_done(self, generation_id: int) -> None:
        while True:
            await asyncio.sleep(self._renew_every)
            try:
                if not await self._jobs.renew(generation_id, self.owner, self._lease):
                    # Also false once this worker has settled the job and not yet stopped renewing it.
                    if await self._jobs.status(generation_id) is GenerationStatus.RUNNING:
                        log.warning("generation %s: lease taken over by another worker", generation_id)
                    return
            except Exception as exc:  # the database may be back before the lease runs out
                log.warning("generation %s: lease not renewed (%s)", generation_id, type(exc).__name__)

    async def _settled(self, settled: Settled) -> None:
        """A job closed at claim time: given up after too many attempts, or found delivered."""
        if settled.status is GenerationStatus.FAILED:
            await self._delivery.given_up(settled)
        await self._queue.enqueue_many(settled.promoted)
