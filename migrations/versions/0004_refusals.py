"""content-safety refusals: the provider's reason on a generation, and the day of a user's last alert

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refusal_reason", sa.String(length=300), nullable=True))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refusal_alert_day", sa.Date(), nullable=True))


def downgrade() -> None:
    # Refused rows become what the previous version calls a refunded failure.
    op.execute("UPDATE generations SET status = 'failed' WHERE status = 'refused'")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("refusal_alert_day")
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_column("refusal_reason")
