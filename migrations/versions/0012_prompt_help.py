"""prompt help: the user's switch, and the prompt a job really used (or the description it made)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prompt_help", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prompt_used", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_column("prompt_used")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("prompt_help")
