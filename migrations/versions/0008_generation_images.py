"""generation images: each delivered image's message and file ids (result buttons, /history, Original)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "generation_images",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("file_id", sa.String(length=256), nullable=False),
        sa.Column("file_unique_id", sa.String(length=128), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_generation_images_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generation_images")),
        sa.UniqueConstraint("generation_id", "position", name="uq_generation_images_position"),
    )
    with op.batch_alter_table("generation_images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_generation_images_generation_id"), ["generation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_generation_images_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("generation_images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_generation_images_user_id"))
        batch_op.drop_index(batch_op.f("ix_generation_images_generation_id"))
    op.drop_table("generation_images")
