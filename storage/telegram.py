"""Telegram bookkeeping (migration 0003_telegram): Bot API calls waiting for the worker.

A pressed inline button must be answered (``answerCallbackQuery`` stops the button's
spinner) and its message edited to show the chosen answer (``editMessageText``), but the
webhook response can carry only ONE method call, and that one goes to the next question.
The webhook therefore stores those two calls here, in the same spirit as the outbox; the
Telegram worker (``service.telegram_outbox``) makes them on its next tick. They are not
messages to the citizen, so they stay out of the message log.

Each row is one Bot API method with its parameters, due at ``next_attempt_at``. A worker
claims rows with a lease (``claimed_until``), deletes a row once the call succeeded (or
failed for good) and moves it later on a retryable error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel

from storage.sql import Prepared, dialect_name
from storage.tables import METADATA, BigId, JSONType, UTCDateTime, table_of

__all__ = [
    "METADATA",
    "PendingCall",
    "TelegramCallRow",
    "claim_calls",
    "drop_call",
    "enqueue_calls",
    "pending_calls",
    "retry_call",
]


class TelegramCallRow(SQLModel, table=True):
    __tablename__ = "telegram_calls"
    __table_args__ = (sa.Index("ix_telegram_calls_due", "next_attempt_at", "id"),)

    id: int | None = Field(
        default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True)
    )
    method: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    params: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    chat: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    attempts: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    next_attempt_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    claimed_until: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


_calls = table_of(TelegramCallRow)


@dataclass(frozen=True)
class PendingCall:
    id: int
    method: str
    params: dict[str, Any]
    chat: str | None
    attempts: int  # including this claim
    created_at: datetime


_CALL_COLUMNS = ("method", "params", "chat", "attempts", "next_attempt_at", "created_at")
_INSERTS: dict[int, Prepared] = {}


def _insert_rows(count: int) -> Prepared:
    """One INSERT of ``count`` rows (binds ``method_0``, ``params_0`` ...), compiled once.

    The webhook stores a button press's calls inside the press's conversation
    transaction; a single statement (not an executemany) keeps that one round trip
    without psycopg setting up its pipeline mode for two rows.
    """
    found = _INSERTS.get(count)
    if found is None:
        rows = [
            {name: sa.bindparam(f"{name}_{i}", type_=_calls.c[name].type) for name in _CALL_COLUMNS}
            for i in range(count)
        ]
        found = _INSERTS[count] = Prepared(sa.insert(_calls).values(rows))
    return found


def enqueue_calls(
    session: Session,
    calls: list[tuple[str, dict[str, Any]]],
    chat: str | None,
    now: datetime,
) -> None:
    """Store Bot API calls to make soon, in order, in the session's transaction."""
    if not calls:
        return
    values: dict[str, Any] = {}
    for i, (method, params) in enumerate(calls):
        values.update({
            f"method_{i}": method,
            f"params_{i}": params,
            f"chat_{i}": chat,
            f"attempts_{i}": 0,
            f"next_attempt_at_{i}": now,
            f"created_at_{i}": now,
        })  # fmt: skip
    _insert_rows(len(calls)).run(session, values)


def claim_calls(session: Session, now: datetime, limit: int, lease: timedelta) -> list[PendingCall]:
    """Claim up to ``limit`` due calls, oldest first (rows other workers hold are skipped)."""
    due = sa.and_(
        _calls.c.next_attempt_at <= now,
        sa.or_(_calls.c.claimed_until.is_(None), _calls.c.claimed_until < now),
    )
    chosen = sa.select(_calls.c.id).where(due).order_by(_calls.c.id).limit(limit)
    if dialect_name(session) == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    ids = [int(row.id) for row in session.execute(chosen)]
    if not ids:
        return []
    rows = session.execute(
        sa.update(_calls)
        .where(_calls.c.id.in_(ids), due)
        .values(claimed_until=now + lease, attempts=_calls.c.attempts + 1)
        .returning(
            _calls.c.id,
            _calls.c.method,
            _calls.c.params,
            _calls.c.chat,
            _calls.c.attempts,
            _calls.c.created_at,
        )
    ).all()
    calls = [_pending(row) for row in rows]
    calls.sort(key=lambda call: call.id)
    return calls


def drop_call(session: Session, call_id: int) -> None:
    """Done (or given up): forget the call."""
    session.execute(sa.delete(_calls).where(_calls.c.id == call_id))


def retry_call(session: Session, call_id: int, at: datetime) -> None:
    session.execute(
        sa.update(_calls)
        .where(_calls.c.id == call_id)
        .values(next_attempt_at=at, claimed_until=None)
    )


def pending_calls(session: Session) -> list[PendingCall]:
    """Every stored call, oldest first (tests, support)."""
    rows = session.execute(sa.select(_calls).order_by(_calls.c.id))
    return [_pending(row) for row in rows]


def _pending(row: Any) -> PendingCall:
    return PendingCall(
        id=int(row.id),
        method=row.method,
        params=dict(row.params),
        chat=row.chat,
        attempts=int(row.attempts),
        created_at=row.created_at,
    )
