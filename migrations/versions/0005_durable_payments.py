"""durable payments: a charge is stored before it is credited; refunds are recorded intents

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 17:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("credited_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("refund_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_payments_status"), ["status"], unique=False)
    # Every payment stored so far had its days added in the same transaction.
    op.execute("UPDATE payments SET credited_at = created_at")


def downgrade() -> None:
    # The old schema knows only paid and refunded: an uncredited charge is kept as paid with no days,
    # so it stays refundable; an unfinished refund goes back to paid.
    op.execute("UPDATE payments SET days = 0 WHERE credited_at IS NULL AND status IN ('received', 'refunding')")
    op.execute("UPDATE payments SET status = 'paid' WHERE status IN ('received', 'refunding')")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_status"))
        batch_op.drop_column("refund_requested_at")
        batch_op.drop_column("credited_at")
