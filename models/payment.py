"""A Telegram Stars payment. The charge id is unique: a repeated update can never credit twice.

The row is written before its days are added (status `received`), so a payment whose crediting
fails is still known: crediting is retried until it lands, and /refund finds it meanwhile.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, StrEnumColumn, UtcDateTime


class PaymentStatus(StrEnum):
    """received -> paid -> (refunding ->) refunded; a refund may start from received too."""

    RECEIVED = "received"  # stored, its days not added yet: the crediting loop adds them
    PAID = "paid"  # days added (credited_at set)
    REFUNDING = "refunding"  # the refund was asked of Telegram; its outcome is not recorded yet
    REFUNDED = "refunded"  # days taken back if they had been added


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    charge_id: Mapped[str] = mapped_column(String(255), unique=True)  # telegram_payment_charge_id
    provider_charge_id: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[str] = mapped_column(String(128))
    currency: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(Integer)
    days: Mapped[int] = mapped_column(Integer)
    status: Mapped[PaymentStatus] = mapped_column(
        StrEnumColumn(PaymentStatus), default=PaymentStatus.RECEIVED, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    credited_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # days added: a refund takes them back
    refund_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    refunded_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
