"""Telegram bookkeeping (migration 0003_telegram): Bot API calls waiting for the worker.

A pressed inline button must be answered (``answerCallbackQuery`` stops the button's
spinner) and its message edited to show the chosen answer (``editMessageText``), but the
webhook response can carry only ONE method call, and that one goes to the next question.
The webhook therefore stores those two calls here, in the same spirit as the outbox; the
Telegram worker (``palaute.telegram_outbox``) makes them on its next tick. They are not
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

from storage.shapes import Direction
from storage.sql import dialect_name
from storage.tables import (
    ACTIVE_ONLY,
    METADATA,
    BigId,
    ContactRow,
    FlowRunRow,
    JSONType,
    MessageRow,
    UTCDateTime,
)

__all__ = [
    "METADATA",
    "PendingCall",
    "TelegramCallRow",
    "claim_calls",
    "drop_call",
    "enqueue_calls",
    "pending_calls",
    "press_context",
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


_calls = TelegramCallRow.__table__  # type: ignore[attr-defined]
_messages = MessageRow.__table__  # type: ignore[attr-defined]
_runs = FlowRunRow.__table__  # type: ignore[attr-defined]
_contacts = ContactRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PendingCall:
    id: int
    method: str
    params: dict[str, Any]
    chat: str | None
    attempts: int  # including this claim
    created_at: datetime


def enqueue_calls(
    connection: Session | sa.Connection,
    calls: list[tuple[str, dict[str, Any]]],
    chat: str | None,
    now: datetime,
) -> None:
    """Store Bot API calls to make soon, in order (one statement)."""
    if not calls:
        return
    connection.execute(
        sa.insert(_calls),
        [
            {
                "method": method,
                "params": params,
                "chat": chat,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for method, params in calls
        ],
    )


def press_context(
    connection: Session | sa.Connection, channel: str, address_key: str, provider_id: str
) -> tuple[bool, str | None]:
    """For a button press: (was this update handled already, the step the run waits on).

    The step is None when the contact is unknown or has no active run. Two reads, no
    locks: the webhook's cheap check before it hands the press to the conversation.
    """
    seen = connection.execute(
        sa.select(_messages.c.id).where(
            _messages.c.channel == channel,
            _messages.c.direction == Direction.IN.value,
            _messages.c.provider_id == provider_id,
        )
    ).first()
    if seen is not None:
        return True, None
    state = connection.execute(
        sa.select(_runs.c.state)
        .join(_contacts, _contacts.c.id == _runs.c.contact_id)
        .where(
            _contacts.c.channel == channel,
            _contacts.c.address_key == address_key,
            ACTIVE_ONLY,  # literally as in the partial index, so the index is used
        )
    ).scalar_one_or_none()
    step = state.get("current_step") if isinstance(state, dict) else None
    return False, step if isinstance(step, str) else None


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
    calls = [
        PendingCall(
            id=int(row.id),
            method=row.method,
            params=dict(row.params),
            chat=row.chat,
            attempts=int(row.attempts),
            created_at=row.created_at,
        )
        for row in rows
    ]
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
    return [
        PendingCall(
            id=int(row.id),
            method=row.method,
            params=dict(row.params),
            chat=row.chat,
            attempts=int(row.attempts),
            created_at=row.created_at,
        )
        for row in rows
    ]
