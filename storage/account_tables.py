"""Tables for staff accounts: staff_users and the service points granted to them
(migration 0008_staff).

A staff member signs in with an email address (stored lower-cased, so it is unique
whatever the case it is typed in) and an argon2 password hash; never the password.
``failed_logins`` and ``locked_until`` hold the sign-in lockout; ``auth_epoch`` goes up
whenever the password changes or the account is disabled, which ends every session
signed in before (the session remembers the epoch it was made under).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.tables import METADATA, BigId, UTCDateTime

__all__ = ["METADATA", "StaffPointRow", "StaffUserRow"]


def _time(*, nullable: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable))


class StaffUserRow(SQLModel, table=True):
    __tablename__ = "staff_users"
    __table_args__ = (sa.UniqueConstraint("email", name="uq_staff_users_email"),)

    id: int | None = Field(
        default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True)
    )
    email: str = Field(sa_column=sa.Column(sa.String(254), nullable=False))  # lower-cased
    password_hash: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    role: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))  # admin|editor|analyst
    ui_language: str | None = Field(default=None, sa_column=sa.Column(sa.String(8)))
    disabled_at: datetime | None = _time(nullable=True)
    failed_logins: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    locked_until: datetime | None = _time(nullable=True)
    auth_epoch: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    created_at: datetime = _time()
    last_login_at: datetime | None = _time(nullable=True)


class StaffPointRow(SQLModel, table=True):
    """A service point (a flow's ``service_points`` entry) an editor or analyst may see."""

    __tablename__ = "staff_user_points"

    user_id: int = Field(
        sa_column=sa.Column(
            BigId,
            sa.ForeignKey("staff_users.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        )
    )
    service_point: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
