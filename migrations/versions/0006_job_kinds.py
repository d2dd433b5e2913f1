"""job kinds: what a job makes (generate, edit, upscale, describe), the result it continues, its input photo

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), server_default="generate", nullable=False))
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("input_file_id", sa.String(length=256), nullable=True))
        batch_op.create_foreign_key(
            "fk_generations_parent_id_generations", "generations", ["parent_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    # Jobs of the new kinds mean nothing to the previous version: they stay as plain rows.
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_constraint("fk_generations_parent_id_generations", type_="foreignkey")
        batch_op.drop_column("input_file_id")
        batch_op.drop_column("parent_id")
        batch_op.drop_column("kind")
