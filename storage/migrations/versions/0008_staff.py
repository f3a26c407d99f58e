"""Staff accounts: staff_users (sign-in, role, lockout, UI language) and
staff_user_points (the service points an editor or analyst may see).

Revision ID: 0008_staff
Revises: 0007_results
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008_staff"
down_revision: str | None = "0007_results"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types (a migration must not change when the models do).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("ui_language", sa.String(8), nullable=True),
        sa.Column("disabled_at", Time, nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", Time, nullable=True),
        sa.Column("auth_epoch", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("last_login_at", Time, nullable=True),
        sa.UniqueConstraint("email", name="uq_staff_users_email"),
    )
    op.create_table(
        "staff_user_points",
        sa.Column(
            "user_id",
            BigId,
            sa.ForeignKey("staff_users.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("service_point", sa.String(100), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("staff_user_points")
    op.drop_table("staff_users")
