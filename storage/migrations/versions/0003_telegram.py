"""Telegram: Bot API calls waiting for the worker (button answers, chosen-answer edits).

Models: ``storage/telegram.py``.

Revision ID: 0003_telegram
Revises: 0002_sms
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_telegram"
down_revision: str | None = "0002_sms"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types (a migration must not change when models do).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "telegram_calls",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("params", JSONType, nullable=False),
        sa.Column("chat", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", Time, nullable=False),
        sa.Column("claimed_until", Time, nullable=True),
        sa.Column("created_at", Time, nullable=False),
    )
    op.create_index("ix_telegram_calls_due", "telegram_calls", ["next_attempt_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_telegram_calls_due", table_name="telegram_calls")
    op.drop_table("telegram_calls")
