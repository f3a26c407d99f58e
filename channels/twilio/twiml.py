"""SMS text rules and TwiML: what may be stored and sent, and the webhook's XML reply."""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import escape

from bot.clean import clean_text
from bot.messages import Outgoing

# Twilio concatenates inbound SMS up to 1600 characters; anything longer is not a real SMS.
# We keep a little more so the engine can still tell "too long" apart from "cut by us".
MAX_INBOUND_CHARS = 2000
# Twilio refuses outbound bodies longer than 1600 characters.
MAX_OUTBOUND_CHARS = 1600


def sms_text(message: Outgoing) -> str:
    """The SMS text for one outgoing message (SMS has no buttons: the prompt says how to
    answer). Cleaned for XML and cut to what Twilio accepts."""
    return clean_text(message.text)[:MAX_OUTBOUND_CHARS]


TWIML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def render_twiml(messages: Iterable[Outgoing | str]) -> str:
    """A TwiML ``<Response>`` with one ``<Message>`` per reply (empty: no reply).

    Byte for byte what ``twilio.twiml.messaging_response.MessagingResponse`` writes (a
    test compares them), without building an element tree on every webhook.
    """
    parts = []
    for message in messages:
        text = sms_text(message) if isinstance(message, Outgoing) else clean_text(message)
        if text.strip():
            parts.append(f"<Message>{escape(text)}</Message>")
    if not parts:
        return TWIML_DECLARATION + "<Response />"
    return TWIML_DECLARATION + "<Response>" + "".join(parts) + "</Response>"
