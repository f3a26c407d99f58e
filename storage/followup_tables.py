"""Tables for follow-ups after visits: visits, followups, api_tokens (migration 0004;
the claim index ``ix_followups_claimable_due``: 0005; ``api_tokens.source``: 0006).

Kept apart from ``storage.tables`` (the core schema, migration 0001) so that each
migration has one model module; both register on the same ``SQLModel.metadata``.
Phone numbers never appear here: a visit points at a contact (``storage.contacts``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.tables import METADATA, BigId, UTCDateTime

__all__ = ["METADATA", "ApiTokenRow", "FollowupRow", "FollowupStatus", "VisitRow"]


class FollowupStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for due_at
    CLAIMED = "claimed"  # a clock holds it until claimed_until (due_at = claimed_until)
    SENT = "sent"  # the run was started and its first prompt queued in the outbox
    SKIPPED = "skipped"  # not sent on purpose: see skip_reason


def _time(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


class VisitRow(SQLModel, table=True):
    __tablename__ = "visits"
    __table_args__ = (
        sa.UniqueConstraint("organisation", "source", "external_id", name="uq_visits_source_id"),
        sa.Index("ix_visits_contact", "contact_id", "organisation"),
    )

    id: int | None = Field(
        default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True)
    )
    organisation: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    source: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    external_id: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    service_point: str | None = Field(default=None, sa_column=sa.Column(sa.String(100)))
    visit_at: datetime = _time()
    timezone: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    contact_id: int | None = Field(
        default=None,
        sa_column=sa.Column(BigId, sa.ForeignKey("contacts.id", ondelete="SET NULL")),
    )
    channel: str | None = Field(default=None, sa_column=sa.Column(sa.String(32)))
    language: str | None = Field(default=None, sa_column=sa.Column(sa.String(16)))
    flow_id: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    created_at: datetime = _time()


# Follow-ups a clock may claim once due (scheduled, or claimed with a lease that ran out).
CLAIMABLE = sa.text("status IN ('scheduled', 'claimed')")


class FollowupRow(SQLModel, table=True):
    """One prompt to send for a visit: the first one, or the reminder."""

    __tablename__ = "followups"
    __table_args__ = (
        sa.UniqueConstraint("visit_id", "kind", name="uq_followups_visit_kind"),
        # The clock's claim: status in (scheduled, claimed) and due_at <= now, oldest first,
        # read in order from the claimable rows alone, however large the backlog
        # (``storage.followups.claim_due``; migration 0005 replaced ix_followups_status_due).
        sa.Index(
            "ix_followups_claimable_due",
            "due_at",
            "id",
            sqlite_where=CLAIMABLE,
            postgresql_where=CLAIMABLE,
        ),
    )

    id: int | None = Field(
        default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True)
    )
    visit_id: int = Field(
        sa_column=sa.Column(BigId, sa.ForeignKey("visits.id", ondelete="CASCADE"), nullable=False)
    )
    kind: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))  # first | reminder
    status: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    skip_reason: str | None = Field(default=None, sa_column=sa.Column(sa.String(32)))
    planned_at: datetime | None = _time(nullable=True)  # first computed send time
    due_at: datetime | None = _time(nullable=True)  # when the clock looks at it next
    claimed_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    claimed_until: datetime | None = _time(nullable=True)
    attempts: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    run_id: int | None = Field(
        default=None,
        sa_column=sa.Column(BigId, sa.ForeignKey("flow_runs.id", ondelete="SET NULL")),
    )
    sent_at: datetime | None = _time(nullable=True)
    created_at: datetime = _time()
    updated_at: datetime = _time()


ACTIVE_TOKEN = sa.text("revoked_at IS NULL")


class ApiTokenRow(SQLModel, table=True):
    """A bearer token for ``POST /api/visits``. Only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_hash"),
        sa.Index(
            "uq_api_tokens_active_name",
            "organisation",
            "name",
            unique=True,
            sqlite_where=ACTIVE_TOKEN,
            postgresql_where=ACTIVE_TOKEN,
        ),
    )

    id: int | None = Field(
        default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True)
    )
    organisation: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    name: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    # The visits' ``source`` (migration 0006): fixed at creation; a body naming another
    # is refused. Tokens made before 0006 have their name.
    source: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    token_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    created_at: datetime = _time()
    revoked_at: datetime | None = _time(nullable=True)
