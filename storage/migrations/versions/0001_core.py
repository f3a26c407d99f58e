"""Core tables: contacts, opt events, flow versions, runs, answers, messages (log + outbox).

Revision ID: 0001_core
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_core"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types (a migration must not change when tables.py does).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Time = sa.DateTime(timezone=True)
ACTIVE_ONLY = sa.text("status = 'active'")


def _id() -> sa.Column[int]:
    return sa.Column("id", BigId, primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "contacts",
        _id(),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("address", sa.String(512), nullable=False),
        sa.Column("address_key", sa.String(64), nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("opted_out", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("opted_out_at", Time, nullable=True),
        sa.Column("unreachable_reason", sa.String(64), nullable=True),
        sa.Column("unreachable_at", Time, nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.UniqueConstraint("channel", "address_key", name="uq_contacts_address"),
    )

    op.create_table(
        "opt_events",
        _id(),
        sa.Column(
            "contact_id",
            BigId,
            sa.ForeignKey("contacts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("via", sa.String(32), nullable=False),
        sa.Column("keyword", sa.String(255), nullable=False, server_default=""),
        sa.Column("at", Time, nullable=False),
    )
    op.create_index("ix_opt_events_contact_id", "opt_events", ["contact_id"])

    op.create_table(
        "flow_versions",
        _id(),
        sa.Column("flow_id", sa.String(100), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("first_seen_at", Time, nullable=False),
        sa.UniqueConstraint("flow_id", "version", name="uq_flow_versions_flow_version"),
    )

    op.create_table(
        "flow_runs",
        _id(),
        sa.Column(
            "contact_id",
            BigId,
            sa.ForeignKey("contacts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("flow_id", sa.String(100), nullable=False),
        sa.Column("flow_version", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("service_point", sa.String(100), nullable=True),
        sa.Column("state", JSONType, nullable=False),
        sa.Column("started_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.Column("completed_at", Time, nullable=True),
        sa.Column("expires_at", Time, nullable=False),
        sa.ForeignKeyConstraint(
            ["flow_id", "flow_version"],
            ["flow_versions.flow_id", "flow_versions.version"],
            name="fk_flow_runs_flow_version",
        ),
    )
    op.create_index(
        "uq_flow_runs_one_active",
        "flow_runs",
        ["contact_id"],
        unique=True,
        sqlite_where=ACTIVE_ONLY,
        postgresql_where=ACTIVE_ONLY,
    )
    op.create_index(
        "ix_flow_runs_active_expires_at",
        "flow_runs",
        ["expires_at"],
        sqlite_where=ACTIVE_ONLY,
        postgresql_where=ACTIVE_ONLY,
    )
    op.create_index("ix_flow_runs_contact_started", "flow_runs", ["contact_id", "started_at"])
    op.create_index("ix_flow_runs_flow_started", "flow_runs", ["flow_id", "started_at"])

    op.create_table(
        "answers",
        _id(),
        sa.Column(
            "run_id", BigId, sa.ForeignKey("flow_runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "contact_id",
            BigId,
            sa.ForeignKey("contacts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("flow_id", sa.String(100), nullable=False),
        sa.Column("flow_version", sa.String(100), nullable=False),
        sa.Column("step_id", sa.String(100), nullable=False),
        sa.Column("value_int", sa.BigInteger(), nullable=True),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.Column("raw_text", sa.Text(), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("service_point", sa.String(100), nullable=True),
        sa.Column("answered_at", Time, nullable=False),
        sa.Column("skipped", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("truncated", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.UniqueConstraint("run_id", "step_id", name="uq_answers_run_step"),
    )
    op.create_index("ix_answers_flow_answered", "answers", ["flow_id", "answered_at"])
    op.create_index("ix_answers_contact", "answers", ["contact_id"])

    op.create_table(
        "messages",
        _id(),
        sa.Column(
            "contact_id",
            BigId,
            sa.ForeignKey("contacts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "run_id", BigId, sa.ForeignKey("flow_runs.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("provider_id", sa.String(128), nullable=True),
        sa.Column(
            "reply_to", BigId, sa.ForeignKey("messages.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("payload", JSONType, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", Time, nullable=True),
        sa.Column("claimed_until", Time, nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("idempotency_key", sa.String(64), nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.UniqueConstraint("channel", "direction", "provider_id", name="uq_messages_provider_id"),
        sa.UniqueConstraint("idempotency_key", name="uq_messages_idempotency_key"),
    )
    op.create_index("ix_messages_status_next_attempt", "messages", ["status", "next_attempt_at"])
    op.create_index("ix_messages_contact", "messages", ["contact_id", "id"])
    op.create_index("ix_messages_reply_to", "messages", ["reply_to"])
    op.create_index("ix_messages_run", "messages", ["run_id"])


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_table("answers")
    op.drop_table("flow_runs")
    op.drop_table("flow_versions")
    op.drop_table("opt_events")
    op.drop_table("contacts")
