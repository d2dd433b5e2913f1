"""What every handler may ask for by name: the Dispatcher's workflow data, typed.

aiogram passes these to handlers and middlewares as keyword arguments ("Using type hints" in its
dependency-injection docs); one TypedDict keeps the names and types in one place, so a handler's
parameter and what the app provides cannot drift apart unnoticed by the type checker.
"""

from __future__ import annotations

from typing import TypedDict

from aiogram.utils.i18n import I18n

from bot.broadcast import Broadcaster
from bot.clock import Clock
from bot.config import Settings
from bot.middlewares.inflight import InFlight
from bot.queue import JobQueue
from bot.services.api_keys import ApiKeyService
from bot.services.audience import AudienceService
from bot.services.bans import BanService
from bot.services.gallery import GalleryService
from bot.services.generation import GenerationService
from bot.services.jobs import GenerationJobs
from bot.services.originals import OriginalsService
from bot.services.payments import PaymentService
from bot.services.preferences import PreferenceService
from bot.services.private_chats import PrivateChats
from bot.services.prompts import PromptRecords
from bot.services.quota import QuotaService
from bot.services.refunds import RefundService
from bot.services.reports import ReportService
from bot.services.user_levels import LevelService
from bot.services.users import UserService


class WorkflowData(TypedDict):
    settings: Settings
    clock: Clock
    users: UserService
    levels: LevelService
    bans: BanService
    audience: AudienceService
    quota: QuotaService
    generation: GenerationService
    jobs: GenerationJobs
    queue: JobQueue
    reports: ReportService
    payments: PaymentService
    refunds: RefundService
    broadcaster: Broadcaster
    prompts: PromptRecords
    preferences: PreferenceService
    gallery: GalleryService
    private_chats: PrivateChats
    api_keys: ApiKeyService
    originals: OriginalsService


class DispatcherData(WorkflowData):
    """Everything the Dispatcher carries: the services plus what `create_dispatcher` makes per
    dispatcher (the translator error handlers need outside the locale middleware, and the in-flight
    tracker shutdown drains)."""

    i18n_core: I18n
    inflight: InFlight
