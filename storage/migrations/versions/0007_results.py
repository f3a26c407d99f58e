"""Results: test data marked on contacts, runs and answers; channel on runs and answers;
the indexes the reports read.

Simulator and ``palaute chat`` conversations (channel ``simulator``) are staff trying a
flow out: ``is_test`` marks them when written, and this migration marks the ones stored
before (by channel). Reports leave them out unless asked for.

``channel`` and ``is_test`` are copied onto runs and answers (they never change for a
run: a contact's channel is part of who it is), so every report filters and groups one
table without a join. Two indexes on answers hold every column a report filters or counts
by, so counts read an index alone: by (flow, step, test, skipped, value) the per-value
counts in GROUP BY order, by (flow, step, time) a step over a time range (trends). Free
text is cut to its first 100 characters in them to keep their entries small.

Revision ID: 0007_results
Revises: 0006_api_token_source
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007_results"
down_revision: str | None = "0006_api_token_source"
branch_labels: str | None = None
depends_on: str | None = None

TEST_CHANNELS = ("simulator",)  # frozen copy of bot.messages.TEST_CHANNELS


def upgrade() -> None:
    op.add_column(
        "contacts",
        sa.Column("is_test", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    for table in ("flow_runs", "answers"):
        op.add_column(table, sa.Column("channel", sa.String(32), nullable=False, server_default=""))
        op.add_column(
            table, sa.Column("is_test", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    contacts = sa.table(
        "contacts", sa.column("id"), sa.column("channel"), sa.column("is_test", sa.Boolean)
    )
    runs = sa.table(
        "flow_runs",
        sa.column("id"),
        sa.column("contact_id"),
        sa.column("channel"),
        sa.column("is_test", sa.Boolean),
    )
    answers = sa.table(
        "answers",
        sa.column("run_id"),
        sa.column("channel"),
        sa.column("is_test", sa.Boolean),
    )
    op.execute(contacts.update().where(contacts.c.channel.in_(TEST_CHANNELS)).values(is_test=True))
    owner = contacts.alias("owner")
    op.execute(
        runs.update().values(
            channel=sa.select(owner.c.channel)
            .where(owner.c.id == runs.c.contact_id)
            .scalar_subquery(),
            is_test=sa.select(owner.c.is_test)
            .where(owner.c.id == runs.c.contact_id)
            .scalar_subquery(),
        )
    )
    run = runs.alias("run")
    op.execute(
        answers.update().values(
            channel=sa.select(run.c.channel).where(run.c.id == answers.c.run_id).scalar_subquery(),
            is_test=sa.select(run.c.is_test).where(run.c.id == answers.c.run_id).scalar_subquery(),
        )
    )
    value_key = sa.text("substr(value_text, 1, 100)")
    filters = ["service_point", "channel", "language"]
    op.create_index(
        "ix_answers_flow_values",
        "answers",
        [
            "flow_id",
            "step_id",
            "is_test",
            "skipped",
            "value_int",
            value_key,
            *filters,
            "answered_at",
        ],
    )
    op.create_index(
        "ix_answers_flow_step_time",
        "answers",
        [
            "flow_id",
            "step_id",
            "answered_at",
            "is_test",
            "skipped",
            "value_int",
            value_key,
            *filters,
        ],
    )


def downgrade() -> None:
    op.drop_index("ix_answers_flow_values", table_name="answers")
    op.drop_index("ix_answers_flow_step_time", table_name="answers")
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of the tables would lose nothing
    # here but costs a full rewrite of answers.
    for table in ("answers", "flow_runs"):
        op.drop_column(table, "is_test")
        op.drop_column(table, "channel")
    op.drop_column("contacts", "is_test")
