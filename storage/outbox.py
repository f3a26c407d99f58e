"""The outbox: outbound messages waiting to be sent, claimed by workers with a lease.

Life of a queued message::

    queued --claim_due--> sending --mark_sent--> sent --status callback--> delivered
                             |                                         \\-> undelivered/failed
                             +--mark_failed(retry_at)--> queued (later)
                             +--mark_failed(None)------> failed
                             +--lease runs out (crash)--> claimable again, ``reclaimed=True``

Each function takes the caller's session and does not commit: claim in one short
transaction, commit, send, then record the outcome in another. ``claim_due`` is safe
with any number of concurrent workers: PostgreSQL skips rows locked by another claimer
(``FOR UPDATE SKIP LOCKED``); on SQLite the claim (SELECT, then UPDATE ... RETURNING)
runs inside a ``BEGIN IMMEDIATE`` transaction, so claimers take turns.

Providers and crashes: a row is ``sending`` from its claim until ``mark_sent`` /
``mark_failed``. If a worker dies in between, the lease runs out and the row is handed
out again with ``reclaimed=True`` and the same ``idempotency_key``: a channel whose
provider deduplicates on such a key resends with it; any other channel should mark it
``failed`` ("unconfirmed") unless a possible duplicate is acceptable.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session

from storage.contacts import ContactStore, addresses_many
from storage.shapes import Direction, MessageStatus, OutboxMessage
from storage.sql import dialect_name, one_of
from storage.tables import ContactRow, MessageRow, table_of

_messages = table_of(MessageRow)
# A message still ours to send: claimed, or queued again. (An OR, not IN: expanding
# parameters cannot be used with executemany.)
_NOT_SENT_YET = sa.or_(
    _messages.c.status == MessageStatus.SENDING.value,
    _messages.c.status == MessageStatus.QUEUED.value,
)
_people = table_of(ContactRow)
# The outbox's rows (the predicate of ix_messages_outbox_due, as literals like the index).
_PENDING = sa.and_(
    _messages.c.direction == sa.literal_column("'out'"),
    _messages.c.status.in_([sa.literal_column("'queued'"), sa.literal_column("'sending'")]),
)

# Provider status callbacks may arrive out of order: never move a message backwards.
_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.INLINE: 2,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.UNDELIVERED: 3,
    MessageStatus.FAILED: 3,
    MessageStatus.SKIPPED: 3,
}


class StatusUpdate(StrEnum):
    UPDATED = "updated"
    STALE = "stale"  # the message is already further along (or final): nothing changed
    UNKNOWN = "unknown"  # no outbound message has this provider id (yet)


def claim_due(
    session: Session,
    now: datetime,
    limit: int,
    worker_id: str,
    lease: timedelta,
    *,
    contacts: ContactStore,
    channels: Collection[str] | None = None,
) -> list[OutboxMessage]:
    """Claim up to ``limit`` due messages for ``worker_id`` until ``now + lease``.

    Due: ``queued`` with ``next_attempt_at <= now``, or ``sending`` whose lease has run
    out (returned with ``reclaimed=True``; see ``OutboxMessage``). Oldest first, and at
    most one message per contact at a time, in order (claim again after ``mark_sent``).
    The addresses are read with ``storage.contacts.addresses_many`` (no address key is
    needed to read them; ``contacts`` stays in the signature for the callers).
    """
    if limit <= 0:
        return []
    due = sa.or_(
        sa.and_(
            _messages.c.status == MessageStatus.QUEUED.value,
            _messages.c.next_attempt_at <= now,
        ),
        sa.and_(
            _messages.c.status == MessageStatus.SENDING.value,
            _messages.c.claimed_until < now,
        ),
    )
    # A contact's messages leave strictly in order: only the oldest unsent message of a
    # contact can be claimed; the next one waits until it is sent, failed or skipped.
    # (Concurrent claimers agree: an earlier row claimed but not yet committed still
    # reads as queued, so it blocks the later ones for them as well.)
    earlier = _messages.alias("earlier")
    blocked_by_earlier = (
        sa.select(earlier.c.id)
        .where(
            earlier.c.contact_id == _messages.c.contact_id,
            earlier.c.direction == Direction.OUT.value,
            earlier.c.id < _messages.c.id,
            earlier.c.status.in_([MessageStatus.QUEUED.value, MessageStatus.SENDING.value]),
        )
        .exists()
    )
    candidates = (
        sa.select(_messages.c.id, _messages.c.status)
        # ``_PENDING`` spells out the predicate of the partial index ix_messages_outbox_due
        # with literal values, so both databases read the claim from it, in order.
        .where(_PENDING, due, ~blocked_by_earlier)
        .order_by(_messages.c.next_attempt_at, _messages.c.id)
        .limit(limit)
    )
    if channels is not None:
        candidates = candidates.where(_messages.c.channel.in_(sorted(channels)))
    if dialect_name(session) == "postgresql":
        # Lock the chosen rows; rows another claimer holds are skipped, not waited for.
        candidates = candidates.with_for_update(skip_locked=True)
    # (SQLite: the BEGIN IMMEDIATE transaction holds the write lock from here on.)
    chosen = {int(row.id): row.status for row in session.execute(candidates)}
    if not chosen:
        return []
    claimed = session.execute(
        sa.update(_messages)
        .where(one_of(session, _messages.c.id, sorted(chosen)), due)
        .values(
            status=MessageStatus.SENDING.value,
            claimed_by=worker_id[:64],
            claimed_until=now + lease,
            attempts=_messages.c.attempts + 1,
            updated_at=now,
        )
        .returning(
            _messages.c.id,
            _messages.c.contact_id,
            _messages.c.run_id,
            _messages.c.channel,
            _messages.c.kind,
            _messages.c.text,
            _messages.c.payload,
            _messages.c.attempts,
            _messages.c.idempotency_key,
            _messages.c.created_at,
        )
    ).all()
    addresses = addresses_many(session, [int(row.contact_id) for row in claimed])
    messages = [
        OutboxMessage(
            id=int(row.id),
            contact_id=int(row.contact_id),
            run_id=row.run_id,
            channel=row.channel,
            address=addresses[int(row.contact_id)],
            kind=row.kind,
            text=row.text,
            payload=dict(row.payload or {}),
            attempts=int(row.attempts),
            reclaimed=chosen[int(row.id)] == MessageStatus.SENDING.value,
            idempotency_key=row.idempotency_key or f"palaute-message-{row.id}",
            created_at=row.created_at,
        )
        for row in claimed
    ]
    messages.sort(key=lambda message: message.id)
    return messages


def not_reachable(session: Session, contact_ids: Collection[int]) -> dict[int, str]:
    """Which of these contacts must not be messaged now, and why (``opted_out`` /
    ``unreachable``; a contact that no longer exists counts as opted out)."""
    ids = sorted(set(contact_ids))
    if not ids:
        return {}
    rows = session.execute(
        sa.select(_people.c.id, _people.c.opted_out, _people.c.unreachable_at).where(
            one_of(session, _people.c.id, ids)
        )
    )
    reasons: dict[int, str] = {contact_id: "opted_out" for contact_id in ids}  # gone
    for row in rows:
        if row.opted_out:
            continue
        if row.unreachable_at is not None:
            reasons[int(row.id)] = "unreachable"
        else:
            del reasons[int(row.id)]
    return reasons


def renew_claims(
    session: Session, message_ids: list[int], worker_id: str, until: datetime, *, now: datetime
) -> set[int]:
    """Extend ``worker_id``'s claim on these ``sending`` messages to ``until``.

    Returns the ids still held: a message missing from the answer was taken over by
    another worker (our lease ran out) or finished meanwhile, and must not be sent.
    """
    if not message_ids:
        return set()
    rows = session.execute(
        sa.update(_messages)
        .where(
            one_of(session, _messages.c.id, sorted(set(message_ids))),
            _messages.c.status == MessageStatus.SENDING.value,
            _messages.c.claimed_by == worker_id[:64],
        )
        .values(claimed_until=until, updated_at=now)
        .returning(_messages.c.id)
    )
    return {int(row.id) for row in rows}


def mark_sent_many(session: Session, sent: list[tuple[int, str | None]], *, now: datetime) -> None:
    """``mark_sent`` for many ``(message_id, provider_id)`` pairs in one statement."""
    if not sent:
        return
    session.execute(
        sa.update(_messages)
        .where(
            _messages.c.id == sa.bindparam("b_id"),
            _NOT_SENT_YET,
        )
        .values(
            status=MessageStatus.SENT.value,
            provider_id=sa.bindparam("b_provider"),
            error_code=None,
            claimed_until=None,
            next_attempt_at=None,
            updated_at=now,
        ),
        [{"b_id": message_id, "b_provider": provider} for message_id, provider in sent],
    )


def mark_sent(session: Session, message_id: int, provider_id: str | None, *, now: datetime) -> None:
    """The provider accepted the message (``provider_id``: MessageSid, message_id ...)."""
    mark_sent_many(session, [(message_id, provider_id)], now=now)


def mark_failed(
    session: Session,
    message_id: int,
    error_code: str,
    retry_at: datetime | None,
    *,
    now: datetime,
) -> None:
    """The send failed: queue it again at ``retry_at``, or give up when it is None."""
    values: dict[str, object] = {
        "error_code": error_code[:64],
        "claimed_until": None,
        "updated_at": now,
    }
    if retry_at is None:
        values.update(status=MessageStatus.FAILED.value, next_attempt_at=None)
    else:
        values.update(status=MessageStatus.QUEUED.value, next_attempt_at=retry_at)
    session.execute(
        sa.update(_messages)
        .where(
            _messages.c.id == message_id,
            _NOT_SENT_YET,
        )
        .values(**values)
    )


def mark_skipped(session: Session, message_id: int, reason: str, *, now: datetime) -> None:
    """Not sent on purpose (the contact opted out meanwhile, the message went stale)."""
    session.execute(
        sa.update(_messages)
        .where(
            _messages.c.id == message_id,
            _NOT_SENT_YET,
        )
        .values(
            status=MessageStatus.SKIPPED.value,
            error_code=reason[:64],
            claimed_until=None,
            next_attempt_at=None,
            updated_at=now,
        )
    )


def update_status_by_provider_id(
    session: Session,
    channel: str,
    provider_id: str,
    status: MessageStatus,
    error_code: str | None,
    *,
    now: datetime,
) -> StatusUpdate:
    """Apply a provider status callback (Twilio StatusCallback ...) to the sent message.

    Callbacks can come out of order or twice: a message never moves back (``sent``
    after ``delivered`` is ignored as STALE). UNKNOWN means no outbound message carries
    this provider id, e.g. the callback beat ``mark_sent``: the caller may retry later.
    """
    row = session.execute(
        sa.select(_messages.c.id, _messages.c.status)
        .where(
            _messages.c.channel == channel,
            _messages.c.direction == Direction.OUT.value,
            _messages.c.provider_id == provider_id,
        )
        .with_for_update()
    ).first()
    if row is None:
        return StatusUpdate.UNKNOWN
    current = MessageStatus(row.status)
    if _RANK[status] < _RANK[current] or (_RANK[status] == _RANK[current] and _RANK[status] == 3):
        return StatusUpdate.STALE
    if status == current and error_code is None:
        return StatusUpdate.STALE
    session.execute(
        sa.update(_messages)
        .where(_messages.c.id == row.id)
        .values(status=status.value, error_code=error_code, updated_at=now)
    )
    return StatusUpdate.UPDATED


def pending_count(session: Session, *, channel: str | None = None) -> int:
    """Outbound messages not yet handed to a provider (queued or being sent)."""
    statement = sa.select(sa.func.count()).where(_PENDING)  # from ix_messages_outbox_due
    if channel is not None:
        statement = statement.where(_messages.c.channel == channel)
    return int(session.execute(statement).scalar_one())
