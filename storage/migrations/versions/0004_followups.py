"""Follow-ups after visits: visits, followups (the clock's durable schedule), api_tokens.

Revision ID: 0004_followups
Revises: 0003_telegram
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_followups"
down_revision: str | None = "0003_telegram"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types (a migration must not change when the models do).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)
ACTIVE_TOKEN = sa.text("revoked_at IS NULL")


def _id() -> sa.Column[int]:
    return sa.Column("id", BigId, primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "visits",
        _id(),
        sa.Column("organisation", sa.String(100), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("service_point", sa.String(100), nullable=True),
        sa.Column("visit_at", Time, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column(
            "contact_id", BigId, sa.ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("channel", sa.String(32), nullable=True),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("flow_id", sa.String(100), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.UniqueConstraint("organisation", "source", "external_id", name="uq_visits_source_id"),
    )
    op.create_index("ix_visits_contact", "visits", ["contact_id", "organisation"])

    op.create_table(
        "followups",
        _id(),
        sa.Column(
            "visit_id", BigId, sa.ForeignKey("visits.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("skip_reason", sa.String(32), nullable=True),
        sa.Column("planned_at", Time, nullable=True),
        sa.Column("due_at", Time, nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until", Time, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column(
            "run_id", BigId, sa.ForeignKey("flow_runs.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("sent_at", Time, nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.UniqueConstraint("visit_id", "kind", name="uq_followups_visit_kind"),
    )
    op.create_index("ix_followups_status_due", "followups", ["status", "due_at"])

    op.create_table(
        "api_tokens",
        _id(),
        sa.Column("organisation", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("revoked_at", Time, nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_hash"),
    )
    op.create_index(
        "uq_api_tokens_active_name",
        "api_tokens",
        ["organisation", "name"],
        unique=True,
        sqlite_where=ACTIVE_TOKEN,
        postgresql_where=ACTIVE_TOKEN,
    )


def downgrade() -> None:
    op.drop_index("uq_api_tokens_active_name", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("ix_followups_status_due", table_name="followups")
    op.drop_table("followups")
    op.drop_index("ix_visits_contact", table_name="visits")
    op.drop_table("visits")
