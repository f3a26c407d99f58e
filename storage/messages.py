"""The message log: inbound messages, outbound replies, and reading them back.

Outbound messages are written BEFORE anything is sent: ``inline`` ones travel in the
webhook response, ``queued`` ones wait in the outbox (``storage.outbox``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from bot.messages import Choice, Inbound, Outgoing, OutgoingKind
from storage.shapes import Direction, LoggedMessage, MessageStatus
from storage.sql import Prepared
from storage.tables import MessageRow, table_of

_messages = table_of(MessageRow)

# Prebuilt statements for the per-message path (values are bound, never rebuilt).
_FIND_INBOUND = sa.select(_messages.c.id).where(
    _messages.c.channel == sa.bindparam("b_channel"),
    _messages.c.direction == Direction.IN.value,
    _messages.c.provider_id == sa.bindparam("b_provider_id"),
)
_MESSAGE_COLUMNS = (
    "contact_id",
    "run_id",
    "direction",
    "channel",
    "provider_id",
    "reply_to",
    "kind",
    "text",
    "payload",
    "status",
    "error_code",
    "attempts",
    "next_attempt_at",
    "claimed_until",
    "claimed_by",
    "idempotency_key",
    "created_at",
    "updated_at",
)
_FAST_FIND_INBOUND = Prepared(_FIND_INBOUND)
_INSERT_RETURNING_ID = Prepared(sa.insert(_messages).returning(_messages.c.id), _MESSAGE_COLUMNS)
_INSERT = Prepared(sa.insert(_messages), _MESSAGE_COLUMNS)
_SET_RUN = Prepared(
    sa.update(_messages)
    .where(_messages.c.id == sa.bindparam("b_id"))
    .values(run_id=sa.bindparam("b_run_id"))
)


@dataclass(frozen=True)
class NewOutgoing:
    """One reply to store: the core's message and how it leaves."""

    message: Outgoing
    status: MessageStatus  # INLINE or QUEUED (SKIPPED for contacts who cannot get it)
    next_attempt_at: datetime | None = None


def find_inbound(session: Session, channel: str, provider_id: str) -> int | None:
    """The id of the inbound message already stored with this provider id, if any."""
    found = _FAST_FIND_INBOUND.run(
        session, {"b_channel": channel, "b_provider_id": provider_id}
    ).scalar()
    return int(found) if found is not None else None


def insert_inbound(
    session: Session,
    contact_id: int,
    inbound: Inbound,
    now: datetime,
    *,
    run_id: int | None = None,
) -> int:
    payload: dict[str, Any] = {}
    if inbound.start_code is not None:
        payload["start_code"] = inbound.start_code
    if inbound.language_hint is not None:
        payload["language_hint"] = inbound.language_hint
    values = {
        "contact_id": contact_id,
        "run_id": run_id,
        "direction": Direction.IN.value,
        "channel": inbound.channel,
        "provider_id": inbound.provider_id,
        "reply_to": None,
        "kind": inbound.kind.value,
        "text": inbound.text,
        "payload": payload or None,
        "status": MessageStatus.RECEIVED.value,
        "error_code": None,
        "attempts": 0,
        "next_attempt_at": None,
        "claimed_until": None,
        "claimed_by": None,
        "idempotency_key": None,
        "created_at": now,
        "updated_at": now,
    }
    return int(_INSERT_RETURNING_ID.run(session, values).scalar())


def set_run(session: Session, message_id: int, run_id: int | None) -> None:
    _SET_RUN.run(session, {"b_id": message_id, "b_run_id": run_id})


def insert_outgoing(
    session: Session,
    *,
    contact_id: int,
    channel: str,
    run_id: int | None,
    reply_to: int | None,
    items: Sequence[NewOutgoing],
    now: datetime,
) -> None:
    """Store replies in order (their ids increase in the order they must be sent)."""
    if not items:
        return
    batch = OutgoingBatch(
        contact_id=contact_id, channel=channel, run_id=run_id, items=items, reply_to=reply_to
    )
    insert_outgoing_many(session, [batch], now=now)


def replies_to(
    session: Session, inbound_id: int, statuses: Sequence[MessageStatus] | None = None
) -> tuple[Outgoing, ...]:
    """The stored replies to one inbound message, in sending order."""
    statement = sa.select(_messages.c.kind, _messages.c.text, _messages.c.payload).where(
        _messages.c.reply_to == inbound_id, _messages.c.direction == Direction.OUT.value
    )
    if statuses is not None:
        statement = statement.where(_messages.c.status.in_([s.value for s in statuses]))
    rows = session.execute(statement.order_by(_messages.c.id))
    return tuple(outgoing_from_row(row.kind, row.text, row.payload) for row in rows)


def log_of(session: Session, contact_id: int, *, limit: int | None = None) -> list[LoggedMessage]:
    """A contact's messages, oldest first (the last ``limit`` when given)."""
    statement = sa.select(_messages).where(_messages.c.contact_id == contact_id)
    if limit is not None:
        statement = statement.order_by(_messages.c.id.desc()).limit(limit)
        rows = list(reversed(session.execute(statement).all()))
    else:
        rows = list(session.execute(statement.order_by(_messages.c.id)).all())
    out: list[LoggedMessage] = []
    for row in rows:
        payload = row.payload or {}
        out.append(
            LoggedMessage(
                id=int(row.id),
                direction=Direction(row.direction),
                channel=row.channel,
                kind=row.kind,
                text=row.text,
                status=MessageStatus(row.status),
                language=payload.get("language"),
                step_id=payload.get("step_id"),
                choices=tuple(
                    (str(c["value"]), str(c["label"])) for c in payload.get("choices", ())
                ),
                run_id=row.run_id,
                reply_to=row.reply_to,
                provider_id=row.provider_id,
                error_code=row.error_code,
                created_at=row.created_at,
            )
        )
    return out


def outgoing_payload(message: Outgoing) -> dict[str, Any]:
    payload: dict[str, Any] = {"language": message.language}
    if message.step_id is not None:
        payload["step_id"] = message.step_id
    if message.choices:
        payload["choices"] = [{"value": c.value, "label": c.label} for c in message.choices]
    return payload


def outgoing_from_row(kind: str, text: str, payload: dict[str, Any] | None) -> Outgoing:
    payload = payload or {}
    return Outgoing(
        text=text,
        language=str(payload.get("language", "")),
        kind=OutgoingKind(kind),
        step_id=payload.get("step_id"),
        choices=tuple(
            Choice(value=str(c["value"]), label=str(c["label"])) for c in payload.get("choices", ())
        ),
    )


@dataclass(frozen=True)
class OutgoingBatch:
    """One contact's replies for ``insert_outgoing_many`` (as ``insert_outgoing`` takes them)."""

    contact_id: int
    channel: str
    run_id: int | None
    items: Sequence[NewOutgoing]
    reply_to: int | None = None


def insert_outgoing_many(
    session: Session, batches: Sequence[OutgoingBatch], *, now: datetime
) -> None:
    """``insert_outgoing`` for many contacts in one executemany.

    The rows are inserted in the order given (each batch's items in order), so every
    contact's messages keep their sending order, as with ``insert_outgoing``.
    """
    rows = [
        {
            "contact_id": batch.contact_id,
            "run_id": batch.run_id,
            "direction": Direction.OUT.value,
            "channel": batch.channel,
            "provider_id": None,
            "reply_to": batch.reply_to,
            "kind": item.message.kind.value,
            "text": item.message.text,
            "payload": outgoing_payload(item.message),
            "status": item.status.value,
            "error_code": None,
            "attempts": 0,
            "next_attempt_at": item.next_attempt_at,
            "claimed_until": None,
            "claimed_by": None,
            "idempotency_key": uuid.uuid4().hex,
            "created_at": now,
            "updated_at": now,
        }
        for batch in batches
        for item in batch.items
    ]
    # The driver's executemany runs one INSERT per row, in order: the ids keep the
    # sending order on both backends.
    _INSERT.run_many(session, rows)
