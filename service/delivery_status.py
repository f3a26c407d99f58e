"""Delivery status callbacks: what a provider says became of a message we sent.

``record_status`` moves the stored message along (``storage.outbox`` keeps statuses from
going backwards) and applies what a permanent error says about the person (opted out,
unreachable). It answers with a ``StatusOutcome``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Engine

from channels.twilio import CHANNEL
from channels.twilio.status import StatusUpdate
from service.sms_outbox import apply_contact_effect
from storage import outbox as outbox_repo
from storage import sms as sms_repo
from storage.contacts import ContactStore
from storage.db import transaction
from storage.shapes import MessageStatus

log = logging.getLogger(__name__)


class StatusOutcome(StrEnum):
    UPDATED = "updated"
    STALE = "stale"  # the message is already further along (or final): nothing changed
    UNKNOWN = "unknown"  # no message of ours has this provider id
    ATTACHED = "attached"  # the sender died before recording the id: the callback named it


def record_status(
    engine: Engine,
    contacts: ContactStore,
    update: StatusUpdate,
    message_id: int | None,
    now: datetime,
) -> StatusOutcome:
    """Record a Twilio status callback for the message with ``update.sid``.

    ``message_id`` is the id the callback URL names (``?m=``): when no message has the
    sid yet (the sender died before recording it), the sid is attached to that message.
    """
    error_code = str(update.error_code) if update.error_code is not None else None
    status = MessageStatus(update.status)
    with transaction(engine) as session:
        result = outbox_repo.update_status_by_provider_id(
            session, CHANNEL, update.sid, status, error_code, now=now
        )
        outcome = StatusOutcome(result.value)
        if (
            outcome is StatusOutcome.UNKNOWN
            and message_id is not None
            and sms_repo.attach_provider_id(session, message_id, CHANNEL, update.sid, now=now)
        ):
            log.warning(
                "message %s: MessageSid %s attached from a status callback (its send "
                "was never recorded)",
                message_id,
                update.sid,
            )
            outbox_repo.update_status_by_provider_id(
                session, CHANNEL, update.sid, status, error_code, now=now
            )
            outcome = StatusOutcome.ATTACHED
        if outcome is StatusOutcome.UNKNOWN:
            log.info("status %s for unknown MessageSid %s", update.status, update.sid)
            return outcome
        effect = update.contact_effect
        if effect is not None:
            contact_id = sms_repo.contact_of_sent(session, CHANNEL, update.sid)
            if contact_id is not None:
                apply_contact_effect(
                    contacts, session, contact_id, None, now, effect=effect, code=update.error_code
                )
    return outcome
