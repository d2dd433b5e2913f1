"""inline mode: the inline message a job edits, and whether the user has a private chat with the bot

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inline_message_id", sa.String(length=128), nullable=True))
        batch_op.create_index("ix_generations_inline_message_id", ["inline_message_id"], unique=True)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("private_chat_at", sa.DateTime(timezone=True), nullable=True))
    # Before inline mode every user reached the bot by writing to it: their private chat exists.
    op.execute("UPDATE users SET private_chat_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("private_chat_at")
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index("ix_generations_inline_message_id")
        batch_op.drop_column("inline_message_id")
