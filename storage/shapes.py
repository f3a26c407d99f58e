"""Plain, immutable shapes that storage hands to the rest of palaute.

Rows (``storage.tables``) stay inside storage; these carry no session and can cross
threads. Addresses (phone numbers, chat ids) appear only where a sender needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class MessageStatus(StrEnum):
    RECEIVED = "received"  # inbound, stored
    INLINE = "inline"  # outbound, returned in the webhook response (TwiML, simulator JSON)
    QUEUED = "queued"  # outbound, waiting in the outbox (next_attempt_at)
    SENDING = "sending"  # claimed by a worker (claimed_until); the send may be in flight
    SENT = "sent"  # the provider accepted it (provider_id known)
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"  # gave up (or the provider refused it permanently)
    SKIPPED = "skipped"  # not sent on purpose (opted out, quiet hours passed ...)


@dataclass(frozen=True)
class StoredContact:
    id: int
    channel: str
    language: str | None
    opted_out: bool
    opted_out_at: datetime | None
    unreachable_reason: str | None
    unreachable_at: datetime | None
    created_at: datetime
    is_test: bool = False  # simulator / `palaute chat`: left out of results


@dataclass(frozen=True)
class OutboxMessage:
    """A claimed outbound message, ready for a channel to send.

    ``reclaimed`` is True when an earlier claim's lease ran out while the row was
    ``sending``: that worker may have crashed after the provider accepted the message.
    Resend only through a provider that deduplicates on ``idempotency_key``; otherwise
    call ``outbox.mark_failed(..., error_code="unconfirmed", retry_at=None)`` or accept
    a possible duplicate knowingly.
    """

    id: int
    contact_id: int
    run_id: int | None
    channel: str
    address: str
    kind: str
    text: str
    payload: dict[str, Any]
    attempts: int  # including this claim
    reclaimed: bool
    idempotency_key: str
    created_at: datetime


@dataclass(frozen=True)
class LoggedMessage:
    """One line of a contact's message log (simulator transcript, support)."""

    id: int
    direction: Direction
    channel: str
    kind: str
    text: str
    status: MessageStatus
    language: str | None
    step_id: str | None
    choices: tuple[tuple[str, str], ...]  # (value, label)
    run_id: int | None
    reply_to: int | None
    provider_id: str | None
    error_code: str | None
    created_at: datetime
