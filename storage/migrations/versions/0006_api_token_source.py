"""API tokens carry the ``source`` their visits are stored under, fixed at creation.

One token could post visits under any other system's ``source`` and so block that
system's visits as duplicates (visits are unique per organisation, source and id). Each
token now has its own ``source``; ``POST /api/visits`` refuses (403) a body naming another.

Existing tokens get their ``name`` as their source: the source they were already given
when a body named none, so a system that never named a source keeps working unchanged.
A system that named another source in its bodies gets 403 until it is given a token made
for that source (``palaute api-token create NAME --source S``).

Revision ID: 0006_api_token_source
Revises: 0005_queue_indexes
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_api_token_source"
down_revision: str | None = "0005_queue_indexes"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("source", sa.String(100), nullable=True))
    op.execute(sa.text("UPDATE api_tokens SET source = name"))
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("source", existing_type=sa.String(100), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("source")
