"""An inbound SMS: Twilio's webhook form -> ``bot.messages.Inbound`` (or a rejection)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from bot.clean import clean_text
from bot.messages import Inbound, InboundKind
from channels.base import Rejected
from channels.twilio import CHANNEL
from channels.twilio.twiml import MAX_INBOUND_CHARS

# Twilio's OptOutType values (Advanced Opt-Out), passed to the core as Inbound.provider_keyword.
OPT_OUT_TYPES = frozenset({"STOP", "START", "HELP"})


class RejectReason(StrEnum):
    NO_SENDER = "no_sender"
    NO_MESSAGE_SID = "no_message_sid"


class InvalidWebhook(Rejected):
    """The form cannot be a Twilio message at all (no sender or no MessageSid).

    Retrying the same request cannot help. The web layer answers 400 with ``str(self)``.
    """

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def form_field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def parse_inbound(form: Mapping[str, Any]) -> Inbound:
    """The inbound message in a Twilio webhook form.

    Unknown fields are ignored. A missing ``Body`` counts as empty. A message with media
    and no text becomes ``InboundKind.MEDIA`` (the core re-prompts). ``OptOutType`` (also
    for custom keywords set in the Messaging Service) becomes ``provider_keyword`` and the
    body stays what the citizen sent. Raises ``InvalidWebhook`` without From or MessageSid.
    """
    sender = form_field(form, "From").strip()
    if not sender:
        raise InvalidWebhook(RejectReason.NO_SENDER, "The form has no From number.")
    sid = (
        form_field(form, "MessageSid")
        or form_field(form, "SmsMessageSid")
        or form_field(form, "SmsSid")
    ).strip()
    if not sid:
        raise InvalidWebhook(RejectReason.NO_MESSAGE_SID, "The form has no MessageSid.")
    body = clean_text(form_field(form, "Body"))[:MAX_INBOUND_CHARS]
    try:
        num_media = int(form_field(form, "NumMedia") or "0")
    except ValueError:
        num_media = 0
    opt_out_type = form_field(form, "OptOutType").strip().upper()
    provider_keyword = opt_out_type if opt_out_type in OPT_OUT_TYPES else None
    kind = InboundKind.MEDIA if num_media > 0 and not body.strip() else InboundKind.TEXT
    return Inbound(
        channel=CHANNEL,
        address=sender,
        text=body,
        kind=kind,
        provider_id=sid,
        provider_keyword=provider_keyword,
    )
