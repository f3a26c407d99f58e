"""Partial indexes for the two queues: pending outbound messages, claimable follow-ups.

The outbox claim and the clock's claim take the oldest due rows. With an index over the
pending rows alone, in claim order, each claim reads about as many index entries as it
claims, however many messages were ever sent (the log keeps growing) or follow-ups are
waiting (a backlog after an import): no scan and sort of every due row per claim.

They replace the (status, next_attempt_at) and (status, due_at) indexes, which served
only those claims (and counts of pending rows, which the new ones serve as well) and had
to be rewritten on every status change of every row, sent or not.

Revision ID: 0005_queue_indexes
Revises: 0004_followups
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_queue_indexes"
down_revision: str | None = "0004_followups"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the predicates (a migration must not change when the models do).
OUTBOX_PENDING = sa.text("direction = 'out' AND status IN ('queued', 'sending')")
CLAIMABLE = sa.text("status IN ('scheduled', 'claimed')")


def upgrade() -> None:
    op.drop_index("ix_messages_status_next_attempt", table_name="messages")
    op.drop_index("ix_followups_status_due", table_name="followups")
    op.create_index(
        "ix_messages_outbox_due",
        "messages",
        ["channel", "next_attempt_at", "id"],
        sqlite_where=OUTBOX_PENDING,
        postgresql_where=OUTBOX_PENDING,
    )
    op.create_index(
        "ix_followups_claimable_due",
        "followups",
        ["due_at", "id"],
        sqlite_where=CLAIMABLE,
        postgresql_where=CLAIMABLE,
    )


def downgrade() -> None:
    op.drop_index("ix_followups_claimable_due", table_name="followups")
    op.drop_index("ix_messages_outbox_due", table_name="messages")
    op.create_index("ix_followups_status_due", "followups", ["status", "due_at"])
    op.create_index("ix_messages_status_next_attempt", "messages", ["status", "next_attempt_at"])
