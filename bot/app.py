"""Factories: everything the bot needs is built here and passed in, so tests build their own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramServerError
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import BotCommand, BotCommandScopeDefault
from aiogram.utils.i18n import I18n
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import positions
from bot.alerts import RefusalAlerts
from bot.api_results import ApiResults
from bot.assist.chat import RouterChat
from bot.assist.prompt_help import PromptHelper
from bot.assist.vision import VisionDescriber
from bot.broadcast import Broadcaster
from bot.catalog import ModelId
from bot.clock import Clock
from bot.config import ConfigError, Settings
from bot.coordination.concurrency import ConcurrencyLimiter
from bot.coordination.factory import Coordination, blocking_pool, build_coordination
from bot.coordination.leases import Leases, instance_owner
from bot.crediting import CREDIT_EVERY_SECONDS, PaymentCrediting
from bot.db import (
    SessionFactory,
    create_engine,
    create_session_factory,
    default_bulk_slots,
    engine_options,
    run_migrations,
)
from bot.describing import DescribeRunner
from bot.fsm import CompactMemoryStorage
from bot.i18n import DEFAULT_LOCALE, N_, SUPPORTED, LocaleMiddleware, create_i18n
from bot.inline_delivery import InlineAwareDelivery
from bot.middlewares.ban import BanMiddleware
from bot.middlewares.bulk import BulkUpdates
from bot.middlewares.flood import FloodMiddleware
from bot.middlewares.inflight import InFlight
from bot.middlewares.private_chat import PrivateChatMiddleware
from bot.middlewares.user import UserMiddleware
from bot.notifier import CHECK_EVERY_SECONDS, SubscriptionNotifier
from bot.photo_jobs import PhotoJobs
from bot.photos import PHOTO_MAX_BYTES
from bot.positions import LinePositions
from bot.prompt_step import PromptStep
from bot.providers import sdk_preload
from bot.providers.base import ImageProvider
from bot.providers.flux_dev import FluxDevProvider
from bot.providers.flux_pro import FluxProProvider
from bot.providers.gemini import GeminiProvider
from bot.providers.gemini_edit import GeminiEditor
from bot.providers.hf_kontext import HFKontextEditor
from bot.providers.pollinations import PollinationsProvider
from bot.providers.replicate_kontext import KontextEditor
from bot.providers.upscaler import RealEsrganUpscaler
from bot.queue import JobQueue, create_broker
from bot.recovery import Recovery
from bot.safety import BlockedTerms, SafetyPolicy
from bot.services.api_files import ApiFiles
from bot.services.api_generation import ApiGeneration
from bot.services.api_keys import ApiKeyService
from bot.services.audience import AudienceService
from bot.services.bans import BanService
from bot.services.editing import EditingService, EditStep
from bot.services.gallery import GalleryService
from bot.services.generation import GenerationService
from bot.services.health import ProviderHealth
from bot.services.jobs import GenerationJobs
from bot.services.originals import PURGE_EVERY_SECONDS as ORIGINALS_PURGE_EVERY_SECONDS
from bot.services.originals import OriginalsService
from bot.services.payments import PaymentService
from bot.services.preferences import PreferenceService
from bot.services.private_chats import PrivateChats
from bot.services.prompts import PromptRecords
from bot.services.quota import QuotaService
from bot.services.refunds import RefundService
from bot.services.refusals import RefusalService
from bot.services.reports import ReportService
from bot.services.user_cache import UserViewCache
from bot.services.user_levels import LevelService
from bot.services.users import UserService
from bot.telegram import create_bot
from bot.web.health import Check, database_check, ping_check
from bot.web.metrics import Metrics
from bot.web.middleware import UpdateCounter
from bot.web.openai_api import OpenAIApi, add_openai_api
from bot.web.server import add_webhook, build_web_app, serve
from bot.worker import Worker
from bot.workflow import DispatcherData, WorkflowData
from handlers import build_routers
from keyboards.menu import menu_texts

log = logging.getLogger(__name__)

API_PURGE_EVERY_SECONDS = 300.0

G = TypeVar("G", bound=GeminiProvider)


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _gemini(cls: type[G], settings: Settings) -> G:
    """The Gemini image model as configured: the generator, or the editor (the same model, a photo given)."""
    return cls(
        api_key=_secret(settings.gemini_api_key),
        model=settings.gemini_image_model,
        base_url=settings.gemini_base_url,
        timeout=settings.gemini_timeout,
        safety=settings.safety_level,
        max_bytes=settings.provider_max_bytes,
    )


def build_providers(settings: Settings) -> list[ImageProvider]:
    """Every provider, configured or not: unconfigured ones are skipped by the chain, and `doctor` reports them."""
    return [
        _gemini(GeminiProvider, settings),
        FluxDevProvider(
            hf_token=_secret(settings.hf_token),
            hub_endpoint=settings.hf_endpoint,
            router_url=settings.hf_router_url,
            timeout=settings.hf_timeout,
            max_bytes=settings.provider_max_bytes,
        ),
        FluxProProvider(
            hf_token=_secret(settings.hf_token),
            replicate_token=_secret(settings.replicate_api_token),
            router_url=settings.hf_router_url,
            replicate_base_url=settings.replicate_base_url,
            timeout=settings.hf_timeout,
            safety=settings.safety_level,
            max_bytes=settings.provider_max_bytes,
        ),
        PollinationsProvider(
            api_key=_secret(settings.pollinations_api_key),
            base_url=settings.pollinations_base_url,
            timeout=settings.pollinations_timeout,
            max_bytes=settings.provider_max_bytes,
        ),
    ]


def build_router_chat(settings: Settings) -> RouterChat:
    """The HF router's chat endpoint (prompt help, describe, doctor): HF_TOKEN, at HF_ROUTER_URL."""
    return RouterChat(_secret(settings.hf_token), settings.hf_router_url)


def build_prompt_helper(settings: Settings) -> PromptHelper:
    return PromptHelper(build_router_chat(settings), settings.prompt_model, settings.prompt_timeout)


def build_vision(settings: Settings) -> VisionDescriber:
    return VisionDescriber(build_router_chat(settings), settings.vision_model, settings.vision_timeout)


def build_editing(
    settings: Settings,
    policy: SafetyPolicy,
    health: ProviderHealth | None = None,
    limiter: ConcurrencyLimiter | None = None,
) -> EditingService:
    """Edit: Gemini's image model, then FLUX.1 Kontext (Replicate token, else HF token through the HF router);
    upscale: Real-ESRGAN on Replicate."""
    replicate = _secret(settings.replicate_api_token)
    gemini = _gemini(GeminiEditor, settings)
    on_replicate = (replicate, settings.replicate_base_url, settings.hf_timeout)
    kontext = KontextEditor(
        *on_replicate, model=settings.kontext_model, safety=settings.safety_level, max_bytes=settings.provider_max_bytes
    )
    upscaler = RealEsrganUpscaler(*on_replicate, model=settings.upscale_model, max_bytes=settings.provider_max_bytes)
    kontext_dev = HFKontextEditor(
        _secret(settings.hf_token),
        settings.hf_endpoint,
        settings.hf_router_url,
        settings.hf_timeout,
        max_bytes=settings.provider_max_bytes,
    )
    steps = [
        EditStep(ModelId.GEMINI_FLASH, gemini),
        EditStep(ModelId.FLUX_DEV, kontext),  # with a Replicate token
        EditStep(ModelId.FLUX_DEV, kontext_dev),  # with only an HF token
    ]
    return EditingService(steps, upscaler, policy, health, limiter)


def build_safety_policy(settings: Settings) -> SafetyPolicy:
    """SAFETY_LEVEL goes to the providers; the word list and REFUSAL_FALLBACK to the chain."""
    terms = BlockedTerms()
    if settings.blocked_terms_file is not None:
        try:
            terms = BlockedTerms.load(settings.blocked_terms_file)
        except ValueError as exc:  # changed since the settings were checked
            raise ConfigError(f"Setting BLOCKED_TERMS_FILE: {exc}") from None
        log.info("word list: %d term(s) from %s", len(terms), settings.blocked_terms_file)
    return SafetyPolicy(blocked_terms=terms, refusal_fallback=settings.refusal_fallback)


@dataclass
class Services:
    """The application's long-lived objects; the dispatcher hands them to handlers as workflow data."""

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: SessionFactory
    providers: list[ImageProvider]
    users: UserService
    levels: LevelService
    bans: BanService
    audience: AudienceService
    quota: QuotaService
    generation: GenerationService
    jobs: GenerationJobs
    queue: JobQueue
    leases: Leases
    coordination: Coordination
    owner: str  # this process, as lease holder and job worker
    reports: ReportService
    payments: PaymentService
    refunds: RefundService
    broadcaster: Broadcaster
    refusals: RefusalService
    prompts: PromptRecords
    preferences: PreferenceService
    gallery: GalleryService
    private_chats: PrivateChats
    api_keys: ApiKeyService
    api_files: ApiFiles
    originals: OriginalsService

    def workflow_data(self) -> WorkflowData:
        """Spread into the Dispatcher: what handlers receive by parameter name (bot/workflow.py)."""
        return {
            "settings": self.settings,
            "clock": self.clock,
            "users": self.users,
            "levels": self.levels,
            "bans": self.bans,
            "audience": self.audience,
            "quota": self.quota,
            "generation": self.generation,
            "jobs": self.jobs,
            "queue": self.queue,
            "reports": self.reports,
            "payments": self.payments,
            "refunds": self.refunds,
            "broadcaster": self.broadcaster,
            "prompts": self.prompts,
            "preferences": self.preferences,
            "gallery": self.gallery,
            "private_chats": self.private_chats,
            "api_keys": self.api_keys,
            "originals": self.originals,
        }

    async def aclose(self) -> None:
        try:
            await self.queue.close()
        except Exception as exc:
            log.warning("closing the queue failed: %s", type(exc).__name__)
        for provider in self.providers:
            try:
                await provider.aclose()
            except Exception as exc:
                log.warning("closing %s failed: %s", provider.name, type(exc).__name__)
        if self.generation.editing is not None:
            await self.generation.editing.aclose()
        await self.coordination.aclose()
        await self.engine.dispose()


async def build_services(
    settings: Settings,
    clock: Clock | None = None,
    providers: list[ImageProvider] | None = None,
    *,
    migrate: bool = True,
) -> Services:
    """Open the database (migrating it to head unless `migrate` is False: done already) and wire the services."""
    policy = build_safety_policy(settings)  # first: a bad word list stops start-up before anything opens
    clock = clock or Clock(settings.timezone)
    engine = create_engine(settings.database_url, **engine_options(settings))
    if migrate:
        await run_migrations(engine)
    sessions = create_session_factory(engine, settings.bulk_db_slots or default_bulk_slots(settings.database_url))
    leases = Leases(sessions, clock)
    owner = instance_owner()
    providers = providers if providers is not None else build_providers(settings)
    quota = QuotaService(sessions, settings, clock)
    coordination = await build_coordination(settings, clock)
    generation = GenerationService(
        providers,
        coordination.health,
        coordination.limiter,
        policy=policy,
        editing=build_editing(settings, policy, coordination.health, coordination.limiter),
    )
    users = UserService(sessions, clock, settings.admin_ids, UserViewCache(clock, settings.user_cache_ttl))
    queue = JobQueue(create_broker(settings))
    await queue.start()
    levels, bans, audience = LevelService(users.rows), BanService(users.rows), AudienceService(users.rows)
    payments = PaymentService(sessions, users, levels, settings.subscription_plans, clock)
    return Services(
        settings=settings,
        clock=clock,
        engine=engine,
        sessions=sessions,
        providers=providers,
        users=users,
        levels=levels,
        bans=bans,
        audience=audience,
        quota=quota,
        generation=generation,
        jobs=GenerationJobs(sessions, quota, clock, settings),
        queue=queue,
        leases=leases,
        coordination=coordination,
        owner=owner,
        reports=ReportService(sessions, quota, clock),
        payments=payments,
        refunds=RefundService(payments, users),
        broadcaster=Broadcaster(audience, settings.broadcast_rate, leases=leases, owner=owner),
        refusals=RefusalService(sessions, clock),
        prompts=PromptRecords(sessions),
        preferences=PreferenceService(sessions, clock),
        gallery=GalleryService(sessions, clock),
        private_chats=PrivateChats(sessions, clock),
        api_keys=ApiKeyService(sessions, clock, _secret(settings.api_key_secret)),
        api_files=ApiFiles(sessions, clock, settings.api_result_ttl),
        originals=OriginalsService(sessions, clock, settings.originals_days, settings.provider_max_bytes),
    )


def create_storage(settings: Settings) -> BaseStorage:
    """FSM state in Redis when instances share work (any of them may get a user's next update)."""
    if settings.redis_url is None:
        return CompactMemoryStorage()
    from aiogram.fsm.storage.base import DefaultKeyBuilder
    from aiogram.fsm.storage.redis import RedisStorage
    from redis.asyncio import Redis

    return RedisStorage(
        Redis(connection_pool=blocking_pool(settings.redis_url)),
        key_builder=DefaultKeyBuilder(prefix=f"{settings.redis_namespace}:fsm"),
    )


def create_dispatcher(services: Services, i18n: I18n | None = None) -> Dispatcher:
    i18n = i18n or create_i18n()
    inflight = InFlight()
    data: DispatcherData = {**services.workflow_data(), "i18n_core": i18n, "inflight": inflight}
    dp = Dispatcher(storage=create_storage(services.settings), **data)
    flood = services.coordination.flood
    if flood is not None:  # first: a flood is dropped before any other work
        dp.update.outer_middleware(FloodMiddleware(flood, services.settings.admin_ids, i18n))
    dp.update.outer_middleware(inflight)
    dp.update.outer_middleware(UserMiddleware(services.users))
    dp.update.outer_middleware(LocaleMiddleware(i18n))
    dp.update.outer_middleware(BanMiddleware(services.bans))
    dp.update.outer_middleware(BulkUpdates(menu_texts(i18n)))  # after the ban: a banned user sees nothing
    dp.message.outer_middleware(PrivateChatMiddleware(services.private_chats))  # inline mode may upload there
    for router in build_routers():
        dp.include_router(router)
    dp.shutdown.register(on_shutdown)
    return dp


def attach_worker(
    services: Services, bot: Bot, i18n: I18n, owner: str | None = None, metrics: Metrics | None = None
) -> Worker:
    """Make this process run jobs: the queue hands every message to the worker."""
    worker = Worker(
        jobs=services.jobs,
        generation=services.generation,
        delivery=InlineAwareDelivery(bot, i18n),
        queue=services.queue,
        quota=services.quota,
        audience=services.audience,
        settings=services.settings,
        clock=services.clock,
        owner=owner,
        metrics=metrics,
        prompts=PromptStep(
            services.prompts,
            build_prompt_helper(services.settings),
            build_safety_policy(services.settings).blocked_terms,
        ),
        describer=DescribeRunner(
            bot,
            i18n,
            services.jobs,
            services.prompts,
            build_vision(services.settings),
            max_bytes=min(services.settings.provider_max_bytes, PHOTO_MAX_BYTES),
        ),
        alerts=RefusalAlerts(
            bot, i18n, services.refusals, services.users, services.audience, services.settings.refusal_alert
        ),
        photo_jobs=PhotoJobs(bot, services.generation, services.api_files),
        gallery=services.gallery,
        originals=services.originals,
        api_results=ApiResults(services.jobs, services.api_files, services.clock, services.settings.api_timeout),
    )
    services.queue.register(worker.handle)
    return worker


# Menu commands; descriptions are catalogue entries, registered once per language the bot speaks.
COMMANDS = (
    ("generate", N_("Choose a model and generate")),
    ("profile", N_("Your level and today's usage")),
    ("history", N_("Your recent images")),
    ("subscribe", N_("Buy a subscription with Stars")),
    ("settings", N_("Aspect ratio, images per prompt, seed, style")),
    ("help", N_("Models, levels and limits")),
    ("describe", N_("Describe a photo in words")),
    ("prompthelp", N_("Translate and enrich my prompts")),
    ("cancel", N_("Leave the current step")),
    ("paysupport", N_("Help with payments")),
)


async def set_commands(bot: Bot, i18n: I18n) -> None:
    for lang in SUPPORTED:
        commands = [
            BotCommand(command=name, description=i18n.gettext(description, locale=lang))
            for name, description in COMMANDS
        ]
        try:
            await bot.set_my_commands(
                commands, scope=BotCommandScopeDefault(), language_code=None if lang == DEFAULT_LOCALE else lang
            )
        except TelegramAPIError as exc:
            log.warning("setMyCommands(%s) failed: %s", lang, type(exc).__name__)


async def _delete_webhook(bot: Bot) -> None:
    """Long polling needs no webhook. A bad token (401) stops start-up; network trouble is retried
    in the background, so start-up (and Ctrl+C) never hangs on it."""
    delay = 1.0
    while True:
        try:
            await bot.delete_webhook(drop_pending_updates=False)
            return
        except (TelegramNetworkError, TelegramServerError) as exc:
            log.warning("Telegram Bot API not reachable (%s); retrying in %.0fs", type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)


async def on_shutdown(inflight: InFlight, broadcaster: Broadcaster, settings: Settings) -> None:
    """Updates being handled get the grace period; they only validate, reserve and enqueue."""
    await inflight.drain(settings.shutdown_grace)
    await broadcaster.stop()


class BotApp:
    """Front end (polling or webhook), in-process workers and housekeeping, or workers alone.

    Tests construct it with fakes; `python -m bot` and `python -m bot worker` run it.
    """

    def __init__(self, services: Services, bot: Bot, dispatcher: Dispatcher, i18n: I18n) -> None:
        self.services = services
        self.bot = bot
        self.dp = dispatcher
        self.i18n = i18n
        self.owner = services.owner
        settings = services.settings
        self.metrics = Metrics()
        self.metrics.add_refresher(self._refresh_metrics)
        dispatcher.update.outer_middleware(UpdateCounter(self.metrics))
        self.worker = attach_worker(services, bot, i18n, self.owner, self.metrics) if settings.workers > 0 else None
        self.delivery = InlineAwareDelivery(bot, i18n)
        self.recovery = Recovery(services.jobs, services.queue, self.delivery, settings)
        self.notifier = SubscriptionNotifier(
            bot,
            services.users,
            services.levels,
            services.audience,
            i18n,
            services.clock,
            renewable=bool(settings.subscription_plans),
        )
        self.positions = LinePositions(bot, services.jobs, i18n, services.clock)
        self.crediting = PaymentCrediting(bot, services.payments, services.audience, i18n, services.clock)
        self._background: set[asyncio.Task[Any]] = set()
        self._stop_consuming = asyncio.Event()

    @classmethod
    async def create(
        cls, settings: Settings, clock: Clock | None = None, *, migrate: bool = True, **bot_kwargs: Any
    ) -> BotApp:
        if settings.bot_token is None:
            raise ValueError("BOT_TOKEN is required")
        if settings.workers == 0 and settings.redis_url is None:
            raise ValueError("WORKERS=0 needs REDIS_URL: without a shared queue nothing would run the jobs")
        services = await build_services(settings, clock, migrate=migrate)
        bot = create_bot(
            settings.bot_token.get_secret_value(),
            settings.telegram_api_url,
            rate_limiter=services.coordination.telegram_limiter,
            **bot_kwargs,
        )
        i18n = create_i18n()
        return cls(services, bot, create_dispatcher(services, i18n), i18n)

    # --- running -------------------------------------------------------------------------------

    async def run_polling(self, *, stop: asyncio.Event | None = None, **kwargs: Any) -> None:
        try:
            if not await self._reach_telegram(stop):
                return
            await self._start_front_end()
            try:
                await asyncio.wait_for(self.bot.delete_webhook(drop_pending_updates=False), timeout=30)
            except (TelegramNetworkError, TelegramServerError, TimeoutError):
                self._spawn(_delete_webhook(self.bot), "delete-webhook")
            await self.start_background()
            if stop is not None and stop.is_set():  # stopped before polling began: stop_polling had nothing to stop
                return
            await self.dp.start_polling(self.bot, **kwargs)
        finally:
            await self.stop_background()
            await self.aclose()

    async def run_polling_until(self, stop: asyncio.Event) -> None:
        """Polling that stops when `stop` is set; /healthz and /metrics on WEB_PORT when METRICS=1."""
        settings = self.services.settings

        async def stopper() -> None:
            await stop.wait()
            with contextlib.suppress(RuntimeError):  # not polling yet: run_polling sees `stop` itself
                await self.dp.stop_polling()

        task = asyncio.create_task(stopper())
        try:
            if settings.metrics or settings.api_enabled:
                async with serve(self.web_app(), settings.web_host, settings.web_port):
                    await self.run_polling(stop=stop, handle_signals=False)
            else:
                await self.run_polling(stop=stop, handle_signals=False)
        finally:
            task.cancel()

    async def run_webhook(self, stop: asyncio.Event) -> None:
        """A front end behind a load balancer: Telegram POSTs updates to WEBHOOK_URL's path."""
        settings = self.services.settings
        assert settings.webhook_url is not None and settings.webhook_secret is not None
        secret = settings.webhook_secret.get_secret_value()
        app = self.web_app()
        # Answer Telegram once the update is handled: its max_connections then bounds the updates in
        # flight (answering at once let a burst run hundreds at a time and exhaust the Redis pools).
        # An update cut short by a crash is delivered again instead of lost (at least once, not at most).
        add_webhook(
            app,
            self.dp,
            self.bot,
            settings.webhook_path,
            secret,
            grace=settings.shutdown_grace,
            handle_in_background=False,
        )
        try:
            if not await self._reach_telegram(stop):
                return
            await self._start_front_end()
            await self.bot.set_webhook(
                settings.webhook_url,
                secret_token=secret,
                allowed_updates=self.dp.resolve_used_update_types(),
                drop_pending_updates=False,
            )
            await self.start_background()
            async with serve(app, settings.web_host, settings.web_port):
                await stop.wait()  # leaving the block stops taking updates and drains the running ones
        finally:
            await self.stop_background()
            await self.aclose()

    async def run_worker(self, stop: asyncio.Event) -> None:
        """Workers and housekeeping only, until `stop` is set (SIGTERM)."""
        settings = self.services.settings
        try:
            if not await self._reach_telegram(stop):
                return
            await self.start_background()
            if settings.metrics:
                async with serve(self.web_app(), settings.web_host, settings.web_port):
                    await stop.wait()
            else:
                await stop.wait()
        finally:
            await self.stop_background()
            await self.aclose()

    async def _reach_telegram(self, stop: asyncio.Event | None) -> bool:
        """`wait_for_telegram`, given up (False) when `stop` is set first: SIGTERM and Ctrl+C must work
        while the Bot API is unreachable, not only once it answers."""
        if stop is None:
            await self.wait_for_telegram()
            return True
        reaching = asyncio.create_task(self.wait_for_telegram())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({reaching, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reaching, stopping):
                task.cancel()
            await asyncio.gather(reaching, stopping, return_exceptions=True)
        if reaching.cancelled():
            return False
        reaching.result()  # a rejected token is raised, not waited out
        return True

    def web_app(self) -> web.Application:
        services = self.services
        checks: dict[str, Check] = {"database": database_check(services.engine), "queue": services.queue.ping}
        if services.coordination.redis is not None:
            checks["redis"] = ping_check(services.coordination.redis)
        app = build_web_app(checks=checks, metrics=self.metrics)
        if services.settings.api_enabled:
            add_openai_api(app, self.openai_api())
        return app

    def openai_api(self) -> OpenAIApi:
        services, settings = self.services, self.services.settings
        return OpenAIApi(
            keys=services.api_keys,
            users=services.users,
            generation=ApiGeneration(
                services.jobs, services.queue, services.api_files, services.clock, settings.api_timeout
            ),
            files=services.api_files,
            clock=services.clock,
            public_url=settings.api_public_url,
            input_keep=timedelta(seconds=settings.api_result_ttl + settings.api_timeout),
        )

    async def run_api(self, stop: asyncio.Event) -> None:
        """The HTTP API alone (`python -m bot api`): no Telegram front end; in-process workers run the
        jobs (with REDIS_URL, any worker may). Needs API_KEY_SECRET: keys are made with /apikey."""
        settings = self.services.settings
        try:
            await self.start_background()
            async with serve(self.web_app(), settings.web_host, settings.web_port):
                await stop.wait()
        finally:
            await self.stop_background()
            await self.aclose()

    async def _refresh_metrics(self) -> None:
        self.metrics.set_queue_depth(await self.services.jobs.depth())
        self.metrics.set_cooldowns(await self.services.generation.cooldowns())

    async def _start_front_end(self) -> None:
        await set_commands(self.bot, self.i18n)

    async def start_background(self) -> None:
        """Recovery first (so resumed jobs keep their place), then the loops."""
        services = self.services
        if self.worker is not None:  # a process that runs jobs: its providers' SDKs, off the event loop
            self._spawn(sdk_preload.preload(sdk_preload.sdk_modules(services.settings)), "sdk-preload")
        if self.worker is not None and not services.queue.durable:
            await self.recovery.run(take_over=True)  # the in-memory queue died with the last process
        elif self.worker is not None:
            self._spawn(services.queue.consume(self._stop_consuming, services.settings.workers, 0), "consume")
        leases = services.leases
        self._spawn(leases.run_singleton("recovery", self.owner, self.recovery.every, self.recovery.run), "recovery")
        self._spawn(
            leases.run_singleton("subscription-notifier", self.owner, CHECK_EVERY_SECONDS, self.notifier.check),
            "subscription-notifier",
        )
        self._spawn(
            leases.run_singleton("queue-positions", self.owner, positions.EVERY_SECONDS, self.positions.update),
            "queue-positions",
        )
        self._spawn(
            leases.run_singleton("api-files-purge", self.owner, API_PURGE_EVERY_SECONDS, self._purge_api_files),
            "api-files-purge",
        )
        self._spawn(
            leases.run_singleton("originals-purge", self.owner, ORIGINALS_PURGE_EVERY_SECONDS, self._purge_originals),
            "originals-purge",
        )
        # Its first round runs now: payments left uncredited by a failure are credited at start-up.
        self._spawn(
            leases.run_singleton("payment-crediting", self.owner, CREDIT_EVERY_SECONDS, self.crediting.run),
            "payment-crediting",
        )

    async def _purge_api_files(self) -> None:
        purged = await self.services.api_files.purge()
        if purged:
            log.info("API files: %d expired file(s) deleted", purged)

    async def _purge_originals(self) -> None:
        purged = await self.services.originals.purge()
        if purged:
            log.info("originals: %d expired image(s) dropped", purged)

    async def stop_background(self) -> None:
        """Stop taking jobs, let running ones finish for the grace period, put the rest back."""
        self._stop_consuming.set()
        if self.worker is not None:
            await self.worker.stop(self.services.settings.shutdown_grace)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()

    def _spawn(self, coro: Any, name: str) -> None:
        self._background.add(asyncio.create_task(coro, name=name))

    async def wait_for_telegram(self, max_delay: float = 60.0) -> None:
        """getMe until it answers: aiogram's polling would die on a network error at this first call.

        A rejected token (TelegramUnauthorizedError) is raised at once: retrying cannot fix it.
        """
        delay = 1.0
        while True:
            try:
                me = await self.bot.me()
                log.info("running as @%s (id %s)", me.username, me.id)
                return
            except (TelegramNetworkError, TelegramServerError) as exc:
                log.warning("Telegram Bot API not reachable (%s); retrying in %.0fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)

    async def aclose(self) -> None:
        await self.dp.storage.close()
        await self.bot.session.close()
        await self.services.aclose()
