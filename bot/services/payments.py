"""Telegram Stars subscriptions: plans, pre-checkout checks, exactly-once crediting, refunds."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select, update

from bot.clock import Clock
from bot.config import Plan
from bot.db import SessionFactory
from bot.levels import Level
from bot.services.sql import insert_for
from bot.services.users import UserService, UserView
from models import Payment, User

CURRENCY = "XTR"


class CheckoutProblem(StrEnum):
    UNKNOWN_PLAN = "unknown_plan"
    WRONG_AMOUNT = "wrong_amount"
    UNKNOWN_USER = "unknown_user"
    BANNED = "banned"
    ALREADY_UNLIMITED = "already_unlimited"  # admin, or subscriber without an end date: days add nothing


@dataclass(frozen=True, slots=True)
class Credit:
    credited: bool  # False: this charge id was already credited
    user: UserView
    plan: Plan


@dataclass(frozen=True, slots=True)
class PaymentInfo:
    user_id: int
    charge_id: str
    amount: int
    days: int
    status: str


class PaymentService:
    def __init__(self, sessions: SessionFactory, users: UserService, plans: tuple[Plan, ...], clock: Clock) -> None:
        self._sessions = sessions
        self._users = users
        self.plans = plans
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return bool(self.plans)

    def plan_for(self, payload: str) -> Plan | None:
        return next((p for p in self.plans if p.payload == payload), None)

    async def check(self, user_id: int, payload: str, currency: str, amount: int) -> CheckoutProblem | None:
        """Everything pre_checkout_query must confirm before Telegram charges the user."""
        plan = self.plan_for(payload)
        if plan is None:
            return CheckoutProblem.UNKNOWN_PLAN
        if currency != CURRENCY or amount != plan.stars:
            return CheckoutProblem.WRONG_AMOUNT
        user = await self._users.get(user_id)
        if user is None:
            return CheckoutProblem.UNKNOWN_USER
        if user.is_banned:
            return CheckoutProblem.BANNED
        if has_unlimited_access(user):
            return CheckoutProblem.ALREADY_UNLIMITED
        return None

    async def credit(
        self,
        user_id: int,
        *,
        charge_id: str,
        provider_charge_id: str | None,
        payload: str,
        currency: str,
        amount: int,
    ) -> Credit | None:
        """Store the payment and add its days, once per charge id, in one transaction.

        Returns None when the payload names no current plan (the payment is still stored, 0 days).
        """
        plan = self.plan_for(payload)
        days = plan.days if plan else 0
        async with self._sessions.begin() as session:
            stmt = (
                insert_for(session, Payment)
                .values(
                    user_id=user_id,
                    charge_id=charge_id,
                    provider_charge_id=provider_charge_id,
                    payload=payload,
                    currency=currency,
                    amount=amount,
                    days=days,
                    status="paid",
                    created_at=self._clock.now(),
                )
                .on_conflict_do_nothing(index_elements=[Payment.charge_id])
                .returning(Payment.id)
            )
            inserted = (await session.execute(stmt)).scalar_one_or_none()
            user = await session.get(User, user_id, with_for_update=True)
            if user is None:
                raise LookupError(user_id)
            if inserted is not None and days:
                self._users.apply_days(user, days)
                await session.flush()
            view = self._users.view(user)
        if plan is None:
            return None
        return Credit(credited=inserted is not None, user=view, plan=plan)

    async def find(self, charge_id: str) -> PaymentInfo | None:
        async with self._sessions() as session:
            row = (await session.execute(select(Payment).where(Payment.charge_id == charge_id))).scalar_one_or_none()
            return _info(row) if row else None

    async def mark_refunded(self, charge_id: str) -> tuple[PaymentInfo, UserView] | None:
        """After Telegram confirmed the refund: flag it (once) and take the bought days back."""
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    update(Payment)
                    .where(Payment.charge_id == charge_id, Payment.status == "paid")
                    .values(status="refunded", refunded_at=self._clock.now())
                    .returning(Payment)
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            user = await session.get(User, row.user_id, with_for_update=True)
            if user is None:
                raise LookupError(row.user_id)
            if row.days:
                self._users.apply_days(user, -row.days)
                await session.flush()
            return _info(row), self._users.view(user)


def has_unlimited_access(user: UserView) -> bool:
    """Bought days would change nothing for this user (see UserService.apply_days)."""
    return user.level is Level.ADMIN or (user.level is Level.SUBSCRIBER and user.level_until is None)


def _info(row: Payment) -> PaymentInfo:
    return PaymentInfo(row.user_id, row.charge_id, row.amount, row.days, row.status)
