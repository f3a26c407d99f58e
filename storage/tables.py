"""Table models (SQLModel, ``table=True``). Only the storage package uses these classes.

What the rest of palaute receives are plain shapes (``storage.shapes``) and the core's
own types (``bot.run.RunState``, ``bot.messages.Outgoing``), never rows bound to a session.

The schema itself is owned by Alembic (``storage/migrations/versions``); these models
must stay in step with it (``tests/storage/test_migrations.py`` compares them).
Every timestamp is timezone-aware UTC (``UTCDateTime``), on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Field, SQLModel


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive datetimes are refused."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given to storage: pass an aware "
                "datetime, e.g. datetime.now(UTC)"
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)  # stored as UTC text, compared as text
        return value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# 64-bit ids on PostgreSQL; SQLite needs exactly INTEGER PRIMARY KEY for its rowid alias.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

ACTIVE_ONLY = sa.text("status = 'active'")
VALUE_KEY_LENGTH = 100  # answers are counted by value_text's first 100 characters
# Outbound messages not yet handed to a provider: what the outbox claims from.
OUTBOX_PENDING = sa.text("direction = 'out' AND status IN ('queued', 'sending')")


def _id() -> Any:
    return Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))


def _time(*, nullable: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable))


def _flag() -> Any:
    return Field(
        default=False,
        sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false()),
    )


def _channel() -> Any:
    return Field(sa_column=sa.Column(sa.String(32), nullable=False, server_default=""))


def _fk(target: str, *, nullable: bool = False, ondelete: str = "CASCADE") -> Any:
    return Field(
        default=None,
        sa_column=sa.Column(BigId, sa.ForeignKey(target, ondelete=ondelete), nullable=nullable),
    )


class ContactRow(SQLModel, table=True):
    """A person on one channel. ``address`` is read and written ONLY by storage/contacts.py."""

    __tablename__ = "contacts"
    __table_args__ = (sa.UniqueConstraint("channel", "address_key", name="uq_contacts_address"),)

    id: int | None = _id()
    channel: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    address: str = Field(sa_column=sa.Column(sa.String(512), nullable=False))
    address_key: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    language: str | None = Field(default=None, sa_column=sa.Column(sa.String(16)))
    opted_out: bool = Field(
        default=False,
        sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false()),
    )
    opted_out_at: datetime | None = _time(nullable=True)
    # Staff trying flows out (simulator, `palaute chat`): left out of results (0007).
    is_test: bool = _flag()
    unreachable_reason: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    unreachable_at: datetime | None = _time(nullable=True)
    created_at: datetime = _time()
    updated_at: datetime = _time()


class OptEventRow(SQLModel, table=True):
    __tablename__ = "opt_events"

    id: int | None = _id()
    contact_id: int = Field(
        sa_column=sa.Column(
            BigId, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    action: str = Field(sa_column=sa.Column(sa.String(8), nullable=False))  # "out" | "in"
    via: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    keyword: str = Field(sa_column=sa.Column(sa.String(255), nullable=False, server_default=""))
    at: datetime = _time()


class FlowVersionRow(SQLModel, table=True):
    """The YAML text of every flow version a run was started on (runs stay on it)."""

    __tablename__ = "flow_versions"
    __table_args__ = (
        sa.UniqueConstraint("flow_id", "version", name="uq_flow_versions_flow_version"),
    )

    id: int | None = _id()
    flow_id: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    version: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    source: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    first_seen_at: datetime = _time()


class FlowRunRow(SQLModel, table=True):
    __tablename__ = "flow_runs"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["flow_id", "flow_version"],
            ["flow_versions.flow_id", "flow_versions.version"],
            name="fk_flow_runs_flow_version",
        ),
        # At most one active run per contact, enforced by the database on both backends.
        sa.Index(
            "uq_flow_runs_one_active",
            "contact_id",
            unique=True,
            sqlite_where=ACTIVE_ONLY,
            postgresql_where=ACTIVE_ONLY,
        ),
        sa.Index(
            "ix_flow_runs_active_expires_at",
            "expires_at",
            sqlite_where=ACTIVE_ONLY,
            postgresql_where=ACTIVE_ONLY,
        ),
        sa.Index("ix_flow_runs_contact_started", "contact_id", "started_at"),
        sa.Index("ix_flow_runs_flow_started", "flow_id", "started_at"),
    )

    id: int | None = _id()
    contact_id: int = Field(
        sa_column=sa.Column(BigId, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False)
    )
    flow_id: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    flow_version: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    status: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    language: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    service_point: str | None = Field(default=None, sa_column=sa.Column(sa.String(100)))
    channel: str = _channel()  # the contact's, copied for reports (0007)
    is_test: bool = _flag()
    state: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    started_at: datetime = _time()
    updated_at: datetime = _time()
    completed_at: datetime | None = _time(nullable=True)
    expires_at: datetime = _time()


_VALUE_KEY = sa.text(f"substr(value_text, 1, {VALUE_KEY_LENGTH})")
_REPORT_FILTERS = ("service_point", "channel", "language")
_REPORT_BY_VALUE = ("is_test", "skipped", "value_int", _VALUE_KEY, *_REPORT_FILTERS, "answered_at")
_REPORT_BY_TIME = ("answered_at", "is_test", "skipped", "value_int", _VALUE_KEY, *_REPORT_FILTERS)


class AnswerRow(SQLModel, table=True):
    __tablename__ = "answers"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "step_id", name="uq_answers_run_step"),
        sa.Index("ix_answers_flow_answered", "flow_id", "answered_at"),
        # Reports (0007): both hold every column a report filters or counts by, so the
        # counts read an index alone. By value: the per-value counts in GROUP BY order (no
        # sort). By time: a step over a time range (trends). Free text is cut to its first
        # 100 characters to keep the entries small.
        sa.Index("ix_answers_flow_values", "flow_id", "step_id", *_REPORT_BY_VALUE),
        sa.Index("ix_answers_flow_step_time", "flow_id", "step_id", *_REPORT_BY_TIME),
        sa.Index("ix_answers_contact", "contact_id"),
    )

    id: int | None = _id()
    run_id: int = Field(
        sa_column=sa.Column(
            BigId, sa.ForeignKey("flow_runs.id", ondelete="CASCADE"), nullable=False
        )
    )
    contact_id: int = Field(
        sa_column=sa.Column(BigId, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False)
    )
    flow_id: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    flow_version: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    step_id: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    value_int: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    value_text: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    raw_text: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    language: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    service_point: str | None = Field(default=None, sa_column=sa.Column(sa.String(100)))
    channel: str = _channel()  # the run's, copied for reports (0007)
    is_test: bool = _flag()
    answered_at: datetime = _time()
    skipped: bool = Field(
        default=False,
        sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false()),
    )
    truncated: bool = Field(
        default=False,
        sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false()),
    )


class MessageRow(SQLModel, table=True):
    """The message log (both directions) and the outbox (outbound rows not yet sent)."""

    __tablename__ = "messages"
    __table_args__ = (
        # NULL provider ids never collide (both backends treat NULLs as distinct).
        sa.UniqueConstraint("channel", "direction", "provider_id", name="uq_messages_provider_id"),
        # The outbox claim (``storage.outbox.claim_due``): pending rows only, in claim order,
        # so a claim reads what it takes however long the message log grows (migration 0005;
        # it replaced ix_messages_status_next_attempt, which every status change rewrote).
        sa.Index(
            "ix_messages_outbox_due",
            "channel",
            "next_attempt_at",
            "id",
            sqlite_where=OUTBOX_PENDING,
            postgresql_where=OUTBOX_PENDING,
        ),
        sa.Index("ix_messages_contact", "contact_id", "id"),
        sa.Index("ix_messages_reply_to", "reply_to"),
        sa.Index("ix_messages_run", "run_id"),
        sa.UniqueConstraint("idempotency_key", name="uq_messages_idempotency_key"),
    )

    id: int | None = _id()
    contact_id: int = Field(
        sa_column=sa.Column(BigId, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False)
    )
    run_id: int | None = _fk("flow_runs.id", nullable=True, ondelete="SET NULL")
    direction: str = Field(sa_column=sa.Column(sa.String(3), nullable=False))  # "in" | "out"
    channel: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    provider_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))
    reply_to: int | None = _fk("messages.id", nullable=True, ondelete="SET NULL")
    kind: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    text: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    payload: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONType))
    status: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    error_code: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    attempts: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    next_attempt_at: datetime | None = _time(nullable=True)
    claimed_until: datetime | None = _time(nullable=True)
    claimed_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    # Stable per outbound message: channels pass it to providers that deduplicate sends.
    idempotency_key: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    created_at: datetime = _time()
    updated_at: datetime = _time()


METADATA = SQLModel.metadata


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table a table model is mapped to (its ``__table__``, which SQLModel does
    not declare), for the statements written in SQLAlchemy Core."""
    table = sa.inspect(model).local_table
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not mapped to one table")
    return table
