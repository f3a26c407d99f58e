"""An inbound SMS: Twilio's webhook form -> ``Handled(Inbound)``, or ``Rejected`` (no sender,
no MessageSid)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from bot.clean import clean_text
from bot.messages import Inbound, InboundKind
from channels.base import Handled, Rejected
from channels.twilio import CHANNEL
from channels.twilio.twiml import MAX_INBOUND_CHARS

# Twilio's OptOutType values (Advanced Opt-Out), passed to the core as Inbound.provider_keyword.
OPT_OUT_TYPES = frozenset({"STOP", "START", "HELP"})


class RejectReason(StrEnum):
    NO_SENDER = "no_sender"
    NO_MESSAGE_SID = "no_message_sid"


def rejected(reason: RejectReason, message: str) -> Rejected:
    """The form cannot be a Twilio message at all: the web layer answers 400 with ``message``."""
    return Rejected(message, code=reason)


def form_field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def parse_inbound(form: Mapping[str, Any]) -> Handled[Inbound] | Rejected:
    """The inbound message in a Twilio webhook form.

    Unknown fields are ignored. A missing ``Body`` counts as empty. A message with media
    and no text becomes ``InboundKind.MEDIA`` (the core re-prompts). ``OptOutType`` (also
    for custom keywords set in the Messaging Service) becomes ``provider_keyword`` and the
    body stays what the citizen sent. ``Rejected`` without From or MessageSid; never
    ``Ignored`` (every message from a person is read).
    """
    sender = form_field(form, "From").strip()
    if not sender:
        return rejected(RejectReason.NO_SENDER, "The form has no From number.")
    sid = (
        form_field(form, "MessageSid")
        or form_field(form, "SmsMessageSid")
        or form_field(form, "SmsSid")
    ).strip()
    if not sid:
        return rejected(RejectReason.NO_MESSAGE_SID, "The form has no MessageSid.")
    body = clean_text(form_field(form, "Body"))[:MAX_INBOUND_CHARS]
    try:
        num_media = int(form_field(form, "NumMedia") or "0")
    except ValueError:
        num_media = 0
    opt_out_type = form_field(form, "OptOutType").strip().upper()
    provider_keyword = opt_out_type if opt_out_type in OPT_OUT_TYPES else None
    kind = InboundKind.MEDIA if num_media > 0 and not body.strip() else InboundKind.TEXT
    return Handled(
        Inbound(
            channel=CHANNEL,
            address=sender,
            text=body,
            kind=kind,
            provider_id=sid,
            provider_keyword=provider_keyword,
        )
    )
