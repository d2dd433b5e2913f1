"""Telegram Stars subscriptions: plans, pre-checkout checks, durable exactly-once crediting, refunds.

A successful payment is two steps. `record` stores the charge (idempotent on the charge id) before
anything else can fail; `credit_charge` then adds its days, once, flipping `received` to `paid` in
the same transaction. If crediting fails, the charge stays `received` and the crediting loop
(bot.crediting) retries it until it lands; /refund finds it meanwhile.

A refund is recorded as an intent (`refunding`) before Telegram is asked, so a refund whose outcome
was never written is finished by asking again (Telegram then answers CHARGE_ALREADY_REFUNDED) or by
Telegram's refunded_payment message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import case, select, update

from bot.clock import Clock
from bot.config import Plan
from bot.db import SessionFactory
from bot.levels import Level
from bot.services.errors import UserNotFound
from bot.services.sql import insert_for
from bot.services.users import UserService, UserView
from models import Payment, PaymentStatus, User

CURRENCY = "XTR"
CREDIT_BATCH = 100  # charges one crediting round takes on


class CheckoutProblem(StrEnum):
    UNKNOWN_PLAN = "unknown_plan"
    WRONG_AMOUNT = "wrong_amount"
    UNKNOWN_USER = "unknown_user"
    BANNED = "banned"
    ALREADY_UNLIMITED = "already_unlimited"  # admin, or subscriber without an end date: days add nothing


@dataclass(frozen=True, slots=True)
class Credit:
    credited: bool  # False: this charge was already credited (or is being refunded)
    user: UserView
    plan: Plan | None  # None: the payload names no current plan (stored with 0 days)
    charge_id: str


@dataclass(frozen=True, slots=True)
class PaymentInfo:
    user_id: int
    charge_id: str
    amount: int
    days: int
    status: PaymentStatus
    credited: bool  # its days were added

    @property
    def days_taken(self) -> int:
        """What a refund takes back: the days, if they had been added."""
        return self.days if self.credited else 0


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

    async def record(
        self,
        user_id: int,
        *,
        charge_id: str,
        provider_charge_id: str | None,
        payload: str,
        currency: str,
        amount: int,
    ) -> bool:
        """Store the charge, uncredited, in its own small transaction; True if it was new.

        Idempotent: the same charge again (Telegram repeating the update) changes nothing.
        """
        plan = self.plan_for(payload)
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
                    days=plan.days if plan else 0,
                    status=PaymentStatus.RECEIVED,
                    created_at=self._clock.now(),
                )
                .on_conflict_do_nothing(index_elements=[Payment.charge_id])
                .returning(Payment.id)
            )
            return (await session.execute(stmt)).scalar_one_or_none() is not None

    async def credit_charge(self, charge_id: str) -> Credit | None:
        """Add a recorded charge's days, once: one transaction flips it to `paid` and extends the user.

        None for a charge never recorded; `credited` False when it was not `received` any more.
        """
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    update(Payment)
                    .where(Payment.charge_id == charge_id, Payment.status == PaymentStatus.RECEIVED)
                    .values(status=PaymentStatus.PAID, credited_at=self._clock.now())
                    .returning(Payment)
                )
            ).scalar_one_or_none()
            credited = row is not None
            if row is None:
                row = (
                    await session.execute(select(Payment).where(Payment.charge_id == charge_id))
                ).scalar_one_or_none()
                if row is None:
                    return None
            user = await session.get(User, row.user_id, with_for_update=credited)
            if user is None:
                raise UserNotFound(row.user_id)
            if credited and row.days:
                self._users.apply_days(user, row.days)
                await session.flush()
            return Credit(
                credited=credited, user=self._users.view(user), plan=self.plan_for(row.payload), charge_id=charge_id
            )

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
        """`record` then `credit_charge`; None when the payload names no current plan (stored, 0 days)."""
        await self.record(
            user_id,
            charge_id=charge_id,
            provider_charge_id=provider_charge_id,
            payload=payload,
            currency=currency,
            amount=amount,
        )
        credit = await self.credit_charge(charge_id)
        return credit if credit is not None and credit.plan is not None else None

    async def uncredited(self, limit: int = CREDIT_BATCH) -> list[str]:
        """Charges stored whose days were never added, oldest first: what the crediting loop retries."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Payment.charge_id)
                .where(Payment.status == PaymentStatus.RECEIVED)
                .order_by(Payment.created_at, Payment.id)
                .limit(limit)
            )
            return list(rows.scalars())

    async def find(self, charge_id: str) -> PaymentInfo | None:
        async with self._sessions() as session:
            row = (await session.execute(select(Payment).where(Payment.charge_id == charge_id))).scalar_one_or_none()
            return _info(row) if row else None

    async def begin_refund(self, charge_id: str) -> PaymentInfo | None:
        """Record the intent to refund before asking Telegram; None if unknown or already refunded.

        A refund already `refunding` (asked before, outcome never written) may be asked again.
        """
        open_ = (PaymentStatus.RECEIVED, PaymentStatus.PAID, PaymentStatus.REFUNDING)
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    update(Payment)
                    .where(Payment.charge_id == charge_id, Payment.status.in_(open_))
                    .values(status=PaymentStatus.REFUNDING, refund_requested_at=self._clock.now())
                    .returning(Payment)
                )
            ).scalar_one_or_none()
            return _info(row) if row else None

    async def cancel_refund(self, charge_id: str) -> None:
        """Telegram refused the refund: the payment is back as it was (credited or still to credit)."""
        back = case((Payment.credited_at.is_(None), PaymentStatus.RECEIVED), else_=PaymentStatus.PAID)
        async with self._sessions.begin() as session:
            await session.execute(
                update(Payment)
                .where(Payment.charge_id == charge_id, Payment.status == PaymentStatus.REFUNDING)
                .values(status=back, refund_requested_at=None)
            )

    async def mark_refunded(self, charge_id: str) -> tuple[PaymentInfo, UserView] | None:
        """Telegram refunded the charge (our /refund, or elsewhere): flag it once and take back the
        days it had added. None when unknown or already flagged."""
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    update(Payment)
                    .where(Payment.charge_id == charge_id, Payment.status != PaymentStatus.REFUNDED)
                    .values(status=PaymentStatus.REFUNDED, refunded_at=self._clock.now())
                    .returning(Payment)
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            info = _info(row)
            user = await session.get(User, row.user_id, with_for_update=True)
            if user is None:
                raise UserNotFound(row.user_id)
            if info.days_taken:
                self._users.apply_days(user, -info.days_taken)
                await session.flush()
            return info, self._users.view(user)


def has_unlimited_access(user: UserView) -> bool:
    """Bought days would change nothing for this user (see UserService.apply_days)."""
    return user.level is Level.ADMIN or (user.level is Level.SUBSCRIBER and user.level_until is None)


def _info(row: Payment) -> PaymentInfo:
    return PaymentInfo(row.user_id, row.charge_id, row.amount, row.days, row.status, _credited(row.credited_at))


def _credited(credited_at: datetime | None) -> bool:
    return credited_at is not None
