"""Factories: everything the bot needs is built here and passed in, so tests build their own."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramServerError
from aiogram.types import BotCommand, BotCommandScopeDefault
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.broadcast import Broadcaster
from bot.clock import Clock
from bot.config import Settings
from bot.db import SessionFactory, create_engine, create_session_factory, run_migrations
from bot.fsm import CompactMemoryStorage
from bot.i18n import DEFAULT_LOCALE, N_, SUPPORTED, LocaleMiddleware, create_i18n, pick_locale
from bot.middlewares.ban import BanMiddleware
from bot.middlewares.inflight import InFlight
from bot.middlewares.user import UserMiddleware
from bot.notifier import SubscriptionNotifier
from bot.providers.base import ImageProvider
from bot.providers.gemini import GeminiProvider
from bot.providers.hf_replicate import HFReplicateProvider
from bot.providers.pollinations import PollinationsProvider
from bot.services.generation import GenerationService
from bot.services.health import ProviderHealth
from bot.services.jobs import GenerationJobs
from bot.services.payments import PaymentService
from bot.services.quota import QuotaService
from bot.services.reports import ReportService
from bot.services.users import UserService
from bot.telegram import create_bot
from handlers import build_routers

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 30.0


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def build_providers(settings: Settings) -> list[ImageProvider]:
    """Every provider, configured or not: unconfigured ones are skipped by the chain, and `doctor` reports them."""
    return [
        GeminiProvider(
            api_key=_secret(settings.gemini_api_key),
            model=settings.gemini_image_model,
            base_url=settings.gemini_base_url,
            timeout=settings.gemini_timeout,
        ),
        HFReplicateProvider(
            hf_token=_secret(settings.hf_token),
            replicate_token=_secret(settings.replicate_api_token),
            hub_endpoint=settings.hf_endpoint,
            router_url=settings.hf_router_url,
            replicate_base_url=settings.replicate_base_url,
            timeout=settings.hf_timeout,
        ),
        PollinationsProvider(
            api_key=_secret(settings.pollinations_api_key),
            base_url=settings.pollinations_base_url,
            timeout=settings.pollinations_timeout,
        ),
    ]


@dataclass
class Services:
    """The application's long-lived objects; the dispatcher hands them to handlers as workflow data."""

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: SessionFactory
    providers: list[ImageProvider]
    users: UserService
    quota: QuotaService
    generation: GenerationService
    jobs: GenerationJobs
    reports: ReportService
    payments: PaymentService
    broadcaster: Broadcaster

    def workflow_data(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "clock": self.clock,
            "users": self.users,
            "quota": self.quota,
            "generation": self.generation,
            "jobs": self.jobs,
            "reports": self.reports,
            "payments": self.payments,
            "broadcaster": self.broadcaster,
        }

    async def aclose(self) -> None:
        for provider in self.providers:
            try:
                await provider.aclose()
            except Exception as exc:
                log.warning("closing %s failed: %s", provider.name, type(exc).__name__)
        await self.engine.dispose()


async def build_services(
    settings: Settings, clock: Clock | None = None, providers: list[ImageProvider] | None = None
) -> Services:
    """Open the database (migrating it to head) and wire the services."""
    clock = clock or Clock(settings.timezone)
    engine = create_engine(settings.database_url)
    await run_migrations(engine)
    sessions = create_session_factory(engine)
    providers = providers if providers is not None else build_providers(settings)
    quota = QuotaService(sessions, settings, clock)
    generation = GenerationService(providers, ProviderHealth(clock))
    users = UserService(sessions, clock, settings.admin_ids)
    return Services(
        settings=settings,
        clock=clock,
        engine=engine,
        sessions=sessions,
        providers=providers,
        users=users,
        quota=quota,
        generation=generation,
        jobs=GenerationJobs(sessions, quota, generation, clock),
        reports=ReportService(sessions, users, quota, clock),
        payments=PaymentService(sessions, users, settings.subscription_plans, clock),
        broadcaster=Broadcaster(users, settings.broadcast_rate),
    )


def create_dispatcher(services: Services, i18n: I18n | None = None) -> Dispatcher:
    dp = Dispatcher(storage=CompactMemoryStorage(), **services.workflow_data())
    inflight = InFlight()
    dp["inflight"] = inflight
    dp["background"] = set()
    dp.update.outer_middleware(inflight)
    dp.update.outer_middleware(UserMiddleware(services.users))
    i18n = i18n or create_i18n()
    dp["i18n_core"] = i18n
    dp.update.outer_middleware(LocaleMiddleware(i18n))
    dp.update.outer_middleware(BanMiddleware(services.users))
    for router in build_routers():
        dp.include_router(router)
    dp.startup.register(on_startup)
    dp.shutdown.register(on_shutdown)
    return dp


# Menu commands; descriptions are catalogue entries, registered once per language the bot speaks.
COMMANDS = (
    ("generate", N_("Choose a model and generate")),
    ("profile", N_("Your level and today's usage")),
    ("subscribe", N_("Buy a subscription with Stars")),
    ("help", N_("Models, levels and limits")),
    ("cancel", N_("Leave the current step")),
    ("paysupport", N_("Help with payments")),
)


async def on_startup(
    bot: Bot,
    jobs: GenerationJobs,
    users: UserService,
    i18n_core: I18n,
    clock: Clock,
    settings: Settings,
    dispatcher: Dispatcher,
) -> None:
    background: set[asyncio.Task[None]] = dispatcher["background"]
    try:
        await asyncio.wait_for(bot.delete_webhook(drop_pending_updates=False), timeout=30)
    except (TelegramNetworkError, TelegramServerError, TimeoutError):
        background.add(asyncio.create_task(_delete_webhook(bot), name="delete-webhook"))
    for lang in SUPPORTED:
        commands = [
            BotCommand(command=name, description=i18n_core.gettext(description, locale=lang))
            for name, description in COMMANDS
        ]
        try:
            await bot.set_my_commands(
                commands, scope=BotCommandScopeDefault(), language_code=None if lang == DEFAULT_LOCALE else lang
            )
        except TelegramAPIError as exc:
            log.warning("setMyCommands(%s) failed: %s", lang, type(exc).__name__)
    await _notify_interrupted(bot, jobs, users, i18n_core)
    notifier = SubscriptionNotifier(bot, users, i18n_core, clock, renewable=bool(settings.subscription_plans))
    dispatcher["notifier"] = notifier
    background.add(asyncio.create_task(notifier.run_forever(), name="subscription-notifier"))


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


async def _notify_interrupted(bot: Bot, jobs: GenerationJobs, users: UserService, i18n_core: I18n) -> None:
    """Generations a crash cut short: their units are back; tell the users so nothing is silently lost."""
    for item in await jobs.recover_interrupted():
        if item.chat_id is None:
            continue
        user = await users.get(item.user_id) if item.user_id is not None else None
        text = i18n_core.gettext(
            "Your last image request was interrupted by a restart. Nothing was charged — please send it again.",
            locale=pick_locale(user.language_code if user else None),
        )
        try:
            await bot.send_message(item.chat_id, text)
        except TelegramAPIError as exc:
            log.info("could not notify %s about an interrupted request: %s", item.chat_id, type(exc).__name__)
        await asyncio.sleep(0.05)  # stay well under Telegram's 30 messages/s


async def on_shutdown(dispatcher: Dispatcher, broadcaster: Broadcaster) -> None:
    background: set[asyncio.Task[None]] = dispatcher["background"]
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    background.clear()
    inflight: InFlight = dispatcher["inflight"]
    await inflight.drain(SHUTDOWN_GRACE_SECONDS)
    await broadcaster.stop()


class BotApp:
    """Bot + dispatcher + services, runnable with long polling. Tests construct it with fakes."""

    def __init__(self, services: Services, bot: Bot, dispatcher: Dispatcher) -> None:
        self.services = services
        self.bot = bot
        self.dp = dispatcher

    @classmethod
    async def create(cls, settings: Settings, clock: Clock | None = None, **bot_kwargs: Any) -> BotApp:
        if settings.bot_token is None:
            raise ValueError("BOT_TOKEN is required")
        services = await build_services(settings, clock)
        bot = create_bot(settings.bot_token.get_secret_value(), settings.telegram_api_url, **bot_kwargs)
        return cls(services, bot, create_dispatcher(services))

    async def run_polling(self, **kwargs: Any) -> None:
        try:
            await self.wait_for_telegram()
            await self.dp.start_polling(self.bot, **kwargs)
        finally:
            await self.aclose()

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
        await self.bot.session.close()
        await self.services.aclose()
