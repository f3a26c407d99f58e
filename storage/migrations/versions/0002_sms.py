"""SMS delivery bookkeeping: send attempts (crash tracing) and per-sender rate slots.

Models: ``storage/sms.py``.

Revision ID: 0002_sms
Revises: 0001_core
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002_sms"
down_revision: str | None = "0001_core"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types (a migration must not change when models do).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sms_send_attempts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "message_id",
            BigId,
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("provider_id", sa.String(64), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("started_at", Time, nullable=False),
        sa.Column("finished_at", Time, nullable=True),
    )
    op.create_index("ix_sms_send_attempts_message", "sms_send_attempts", ["message_id", "id"])
    op.create_table(
        "sms_rate_slots",
        sa.Column("sender", sa.String(64), primary_key=True),
        sa.Column("next_at", Time, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sms_rate_slots")
    op.drop_index("ix_sms_send_attempts_message", table_name="sms_send_attempts")
    op.drop_table("sms_send_attempts")
