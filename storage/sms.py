"""SMS delivery bookkeeping (migration 0002_sms): send attempts and per-sender rate slots.

* ``sms_send_attempts``: one row per try to hand an outbox message to Twilio, written
  BEFORE the request goes out and completed after. A worker that dies between "Twilio
  accepted it" and "we recorded it" leaves an open attempt (``outcome='started'``):
  the next worker sees it, asks Twilio whether the message exists and records what it
  found, so nothing is lost and nothing is sent twice without a trace.
* ``sms_rate_slots``: the next free sending time of each sender (From number or
  Messaging Service). Every worker reserves its slot here, in the database, so the
  per-sender rate limit holds across processes and machines.

Also the few message-log lookups the SMS webhooks need that ``storage.outbox`` does not
offer (attach a MessageSid to a message whose send outcome was lost, find the contact of
a sent message).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel

from storage.shapes import Direction, MessageStatus
from storage.sql import dialect_name, insert_ignore, one_of
from storage.tables import METADATA, BigId, MessageRow, UTCDateTime, table_of

__all__ = [
    "METADATA",
    "AttemptOutcome",
    "SendAttempt",
    "SendAttemptRow",
    "SmsRateSlotRow",
    "attach_provider_id",
    "attempts_of",
    "contact_of_sent",
    "finish_attempt",
    "finish_sent_attempts",
    "messages_with_open_attempts",
    "open_attempts",
    "push_slot",
    "reserve_slot",
    "reserve_slots",
    "start_attempt",
    "start_attempts",
]

_messages = table_of(MessageRow)


class SendAttemptRow(SQLModel, table=True):
    __tablename__ = "sms_send_attempts"
    __table_args__ = (sa.Index("ix_sms_send_attempts_message", "message_id", "id"),)

    id: int | None = Field(
        default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True)
    )
    message_id: int = Field(
        sa_column=sa.Column(BigId, sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False)
    )
    attempt: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    worker: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    outcome: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    provider_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    error_code: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    detail: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    started_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )


class SmsRateSlotRow(SQLModel, table=True):
    __tablename__ = "sms_rate_slots"

    sender: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    next_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


_attempts = table_of(SendAttemptRow)
_slots = table_of(SmsRateSlotRow)


class AttemptOutcome:
    STARTED = "started"  # the request may be in flight (or the worker died)
    SENT = "sent"  # Twilio accepted it: provider_id set
    FOUND = "found"  # an earlier lost send was found at Twilio: provider_id set
    RETRY = "retry"  # failed, will be retried
    FAILED = "failed"  # failed permanently
    LOST = "lost"  # an earlier attempt never finished and Twilio has no such message
    SKIPPED = "skipped"  # not sent: the contact opted out or cannot be reached


@dataclass(frozen=True)
class SendAttempt:
    id: int
    message_id: int
    attempt: int
    worker: str
    outcome: str
    provider_id: str | None
    error_code: str | None
    detail: str | None
    started_at: datetime
    finished_at: datetime | None


# --- attempts ------------------------------------------------------------------------------


def start_attempt(
    session: Session, message_id: int, attempt: int, worker: str, now: datetime
) -> int:
    result = session.execute(
        sa.insert(_attempts)
        .values(
            message_id=message_id,
            attempt=attempt,
            worker=worker[:64],
            outcome=AttemptOutcome.STARTED,
            started_at=now,
        )
        .returning(_attempts.c.id)
    )
    return int(result.scalar_one())


def finish_attempt(
    session: Session,
    attempt_id: int,
    outcome: str,
    now: datetime,
    *,
    provider_id: str | None = None,
    error_code: str | None = None,
    detail: str | None = None,
) -> None:
    session.execute(
        sa.update(_attempts)
        .where(_attempts.c.id == attempt_id)
        .values(
            outcome=outcome,
            provider_id=provider_id,
            error_code=None if error_code is None else error_code[:64],
            detail=None if detail is None else detail[:2000],
            finished_at=now,
        )
    )


def _shape(row: sa.Row[tuple[object, ...]]) -> SendAttempt:
    return SendAttempt(
        id=int(row.id),
        message_id=int(row.message_id),
        attempt=int(row.attempt),
        worker=row.worker,
        outcome=row.outcome,
        provider_id=row.provider_id,
        error_code=row.error_code,
        detail=row.detail,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def attempts_of(session: Session, message_id: int) -> list[SendAttempt]:
    rows = session.execute(
        sa.select(_attempts).where(_attempts.c.message_id == message_id).order_by(_attempts.c.id)
    )
    return [_shape(row) for row in rows]


def open_attempts(session: Session, message_id: int) -> list[SendAttempt]:
    """Attempts that started and never recorded an outcome (the worker died meanwhile)."""
    rows = session.execute(
        sa.select(_attempts)
        .where(
            _attempts.c.message_id == message_id,
            _attempts.c.outcome == AttemptOutcome.STARTED,
        )
        .order_by(_attempts.c.id)
    )
    return [_shape(row) for row in rows]


# --- message log helpers -------------------------------------------------------------------


def attach_provider_id(
    session: Session,
    message_id: int,
    channel: str,
    provider_id: str,
    *,
    now: datetime,
) -> bool:
    """Give an outbound message the provider id it never got recorded (its sender died
    after the provider accepted it). Only a message still without one, not yet final."""
    result = session.execute(
        sa.update(_messages)
        .where(
            _messages.c.id == message_id,
            _messages.c.channel == channel,
            _messages.c.direction == Direction.OUT.value,
            _messages.c.provider_id.is_(None),
            _messages.c.status.in_(
                [
                    MessageStatus.QUEUED.value,
                    MessageStatus.SENDING.value,
                    MessageStatus.FAILED.value,
                ]
            ),
        )
        .values(
            provider_id=provider_id,
            status=MessageStatus.SENT.value,
            claimed_until=None,
            next_attempt_at=None,
            error_code=None,
            updated_at=now,
        )
    )
    return bool(getattr(result, "rowcount", 0))


def contact_of_sent(session: Session, channel: str, provider_id: str) -> int | None:
    """The contact an outbound message with this provider id was sent to."""
    found = session.execute(
        sa.select(_messages.c.contact_id).where(
            _messages.c.channel == channel,
            _messages.c.direction == Direction.OUT.value,
            _messages.c.provider_id == provider_id,
        )
    ).scalar_one_or_none()
    return int(found) if found is not None else None


# --- per-sender rate slots -----------------------------------------------------------------


def _locked_next_at(session: Session, sender: str, now: datetime) -> datetime:
    statement = sa.select(_slots.c.next_at).where(_slots.c.sender == sender)
    if dialect_name(session) == "postgresql":
        statement = statement.with_for_update()
    found = session.execute(statement).scalar_one_or_none()
    if found is None:
        insert_ignore(session, _slots, {"sender": sender, "next_at": now}, ("sender",))
        found = session.execute(statement).scalar_one()
    value: datetime = found
    return value


def reserve_slot(session: Session, sender: str, now: datetime, interval: timedelta) -> datetime:
    """Reserve the next sending time of ``sender`` (at or after ``now``).

    Slots are ``interval`` apart for all workers together: the row is locked (PostgreSQL
    ``FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` write lock) while it moves forward.
    Commit quickly, then wait until the returned time before sending.
    """
    slot = max(now, _locked_next_at(session, sender, now))
    session.execute(
        sa.update(_slots).where(_slots.c.sender == sender).values(next_at=slot + interval)
    )
    return slot


def push_slot(session: Session, sender: str, not_before: datetime, now: datetime) -> None:
    """Nobody sends from ``sender`` before ``not_before`` (Twilio answered 429 Retry-After)."""
    current = _locked_next_at(session, sender, now)
    if not_before > current:
        session.execute(
            sa.update(_slots).where(_slots.c.sender == sender).values(next_at=not_before)
        )


# --- batches (the outbox worker's fast path) ------------------------------------------------


def start_attempts(
    session: Session, starts: list[tuple[int, int]], worker: str, now: datetime
) -> list[int]:
    """Open one attempt per ``(message_id, attempt)``; their ids, in the same order."""
    if not starts:
        return []
    ids = session.execute(
        sa.insert(_attempts).returning(_attempts.c.id, sort_by_parameter_order=True),
        [
            {
                "message_id": message_id,
                "attempt": attempt,
                "worker": worker[:64],
                "outcome": AttemptOutcome.STARTED,
                "started_at": now,
            }
            for message_id, attempt in starts
        ],
    ).scalars()
    return [int(i) for i in ids]


def finish_sent_attempts(session: Session, sent: list[tuple[int, str]], now: datetime) -> None:
    """Close attempts Twilio accepted: ``(attempt_id, provider_id)`` pairs, one statement."""
    if not sent:
        return
    session.execute(
        sa.update(_attempts)
        .where(_attempts.c.id == sa.bindparam("b_id"))
        .values(
            outcome=AttemptOutcome.SENT,
            provider_id=sa.bindparam("b_provider"),
            error_code=None,
            detail=None,
            finished_at=now,
        ),
        [{"b_id": attempt, "b_provider": provider} for attempt, provider in sent],
    )


def messages_with_open_attempts(session: Session, message_ids: list[int]) -> set[int]:
    """Which of these messages have an attempt that never recorded its outcome."""
    if not message_ids:
        return set()
    rows = session.execute(
        sa.select(_attempts.c.message_id)
        .where(
            one_of(session, _attempts.c.message_id, sorted(set(message_ids))),
            _attempts.c.outcome == AttemptOutcome.STARTED,
        )
        .distinct()
    )
    return {int(row.message_id) for row in rows}


def reserve_slots(
    session: Session, sender: str, now: datetime, interval: timedelta, count: int
) -> list[datetime]:
    """Reserve ``count`` consecutive sending times of ``sender`` at once (see
    ``reserve_slot``): ``interval`` apart, the first at or after ``now``."""
    if count <= 0:
        return []
    first = max(now, _locked_next_at(session, sender, now))
    session.execute(
        sa.update(_slots).where(_slots.c.sender == sender).values(next_at=first + interval * count)
    )
    return [first + interval * i for i in range(count)]
