"""Delivery status callbacks: Twilio's status form -> ``Handled(StatusUpdate)`` for the outbox
(or ``Ignored``, ``Rejected``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from channels.base import ContactEffect, Handled, Ignored, InboundResult
from channels.twilio.inbound import RejectReason, form_field, rejected

# Twilio error code -> what it means for the contact.
CONTACT_EFFECTS: dict[int, ContactEffect] = {
    21610: ContactEffect.OPTED_OUT,
    21211: ContactEffect.INVALID,
    21614: ContactEffect.INVALID,
    30003: ContactEffect.UNREACHABLE,
    30005: ContactEffect.UNREACHABLE,
    30006: ContactEffect.UNREACHABLE,
}

# Twilio MessageStatus -> the outbox status vocabulary of storage.
STATUS_MAP = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed"})


@dataclass(frozen=True)
class StatusUpdate:
    sid: str
    status: str  # storage vocabulary: queued|sending|sent|delivered|undelivered|failed
    twilio_status: str  # as Twilio sent it
    error_code: int | None = None
    error_message: str | None = None
    done_at: datetime | None = None  # RawDlrDoneDate, when present
    to: str = ""
    from_: str = ""

    @property
    def contact_effect(self) -> ContactEffect | None:
        if self.error_code is None:
            return None
        return CONTACT_EFFECTS.get(self.error_code)


def _parse_dlr_date(raw: str) -> datetime | None:
    try:
        return datetime.strptime(raw, "%y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_status(form: Mapping[str, Any]) -> InboundResult[StatusUpdate]:
    """A status callback as a ``StatusUpdate``; ``Ignored`` for a status that is not about an
    outbound delivery (e.g. ``received``); ``Rejected`` without a MessageSid."""
    sid = (form_field(form, "MessageSid") or form_field(form, "SmsSid")).strip()
    if not sid:
        return rejected(RejectReason.NO_MESSAGE_SID, "The form has no MessageSid.")
    raw_status = form_field(form, "MessageStatus") or form_field(form, "SmsStatus")
    twilio_status = raw_status.strip().lower()
    status = STATUS_MAP.get(twilio_status)
    if status is None:
        return Ignored(
            f"Status {twilio_status!r} is not an outbound delivery status.",
            request_id=sid,
            address=form_field(form, "To") or None,
        )
    code_text = form_field(form, "ErrorCode").strip()
    error_code = int(code_text) if code_text.isdigit() else None
    raw_done = form_field(form, "RawDlrDoneDate").strip()
    return Handled(
        StatusUpdate(
            sid=sid,
            status=status,
            twilio_status=twilio_status,
            error_code=error_code,
            error_message=form_field(form, "ErrorMessage").strip() or None,
            done_at=_parse_dlr_date(raw_done) if raw_done else None,
            to=form_field(form, "To"),
            from_=form_field(form, "From"),
        )
    )
