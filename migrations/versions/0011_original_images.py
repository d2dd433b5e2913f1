"""original images: the provider's exact bytes of each delivered photo, for a while, for "📎 Original"

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 19:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "original_images",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("mime_type", sa.String(length=32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("document_file_id", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_original_images_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_original_images")),
        sa.UniqueConstraint("generation_id", "position", name="uq_original_images_position"),
    )
    with op.batch_alter_table("original_images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_original_images_generation_id"), ["generation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_original_images_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_original_images_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("original_images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_original_images_expires_at"))
        batch_op.drop_index(batch_op.f("ix_original_images_user_id"))
        batch_op.drop_index(batch_op.f("ix_original_images_generation_id"))
    op.drop_table("original_images")
