"""Messages between citizens and the bot, independent of any provider.

Channels translate provider payloads into ``Inbound`` and render ``Outgoing``
into SMS text, Telegram keyboards or simulator JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# Channels where staff try flows out (the simulator page and `palaute chat`): what is
# stored from them is test data, left out of results unless asked for.
TEST_CHANNELS = frozenset({"simulator"})


class InboundKind(StrEnum):
    TEXT = "text"  # a typed reply (may be empty)
    BUTTON = "button"  # a pressed button; ``text`` holds the option value
    START = "start"  # an explicit start with a code (Telegram /start CODE, QR)
    MEDIA = "media"  # photo, sticker, voice, MMS without text ...


@dataclass(frozen=True)
class Inbound:
    """One message from a citizen, as the core sees it."""

    channel: str  # "sms", "telegram", "simulator", "kiosk"
    address: str  # E.164 phone number, Telegram chat id, simulator session id
    text: str
    kind: InboundKind = InboundKind.TEXT
    provider_id: str | None = None  # MessageSid / update_id: the idempotency key
    language_hint: str | None = None  # Telegram language_code, visit language ...
    start_code: str | None = None  # with kind START
    # The provider already classified the message as "STOP", "START" or "HELP"
    # (Twilio's OptOutType with Advanced Opt-Out); recorded as opt-out "via provider".
    provider_keyword: str | None = None


class OutgoingKind(StrEnum):
    PROMPT = "prompt"  # a question or message step
    REPROMPT = "reprompt"  # the reply was not understood
    CLOSING = "closing"  # thanks, the run is complete
    INFO = "info"  # help, opt-out confirmation, language menu, expiry ...


@dataclass(frozen=True)
class Choice:
    """A tappable answer (Telegram button, simulator button)."""

    value: str  # what comes back as Inbound.text with kind BUTTON
    label: str


@dataclass(frozen=True)
class Outgoing:
    text: str
    language: str
    kind: OutgoingKind = OutgoingKind.PROMPT
    step_id: str | None = None
    choices: tuple[Choice, ...] = ()
