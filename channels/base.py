"""What both providers' channel packages share: errors, inbound outcomes, the sender protocol.

* ``SendError``: a send failed. ``RetryableSendError`` (trying again later can help: 429,
  5xx, network) or ``PermanentSendError`` (it cannot: bad number, blocked, bad request).
  ``code`` is the provider's code as text, the one type stored in ``messages.error_code``
  (Twilio's ``21610``, Telegram's ``403`` or ``400_chat_not_found``...). ``contact_effect``
  says what the failure means for the person.
* ``InboundResult``: every parser of an inbound request (Twilio's SMS and status forms,
  Telegram's updates, the simulator's JSON) returns one of three outcomes (as in
  nyaruka/courier) and raises nothing for what a client sent:

  - ``Handled(value)``: what the request carries, for the service (an ``Inbound``, a
    ``StatusUpdate``, a Telegram message or block);
  - ``Ignored(reason)``: a well-formed request palaute deliberately does not act on (a
    sticker in a group, a status for an inbound message): answered 200 so the provider
    does not resend it, logged at debug with the reason;
  - ``Rejected(reason, status)``: it cannot be a provider request; resending it unchanged
    cannot help. The web layer answers ``status`` (400) with the reason.
* ``OutboxSender``: what an outbox worker sends through.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Protocol

from bot.messages import Outgoing


class InboundOutcome(StrEnum):
    HANDLED = "handled"
    IGNORED = "ignored"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Handled[T]:
    """A request palaute acts on, and what it carries for the service."""

    value: T
    outcome: ClassVar[InboundOutcome] = InboundOutcome.HANDLED


@dataclass(frozen=True)
class Ignored:
    """A well-formed request palaute deliberately does not act on, and why.

    ``request_id`` (the provider's id for the request) and ``address`` (whom it came from),
    when known, say in the log which request it was."""

    reason: str
    request_id: str | None = None
    address: str | None = None
    outcome: ClassVar[InboundOutcome] = InboundOutcome.IGNORED


@dataclass(frozen=True)
class Rejected:
    """The request cannot be what the provider sends. Resending it unchanged cannot help.

    ``reason`` is for the sender (it is the answer's body), ``status`` the HTTP status to
    answer with; ``code`` names the kind of rejection for code (e.g. Twilio's
    ``no_sender``) and ``field`` the field of the payload at fault, when there is one."""

    reason: str
    status: int = 400
    code: str | None = None
    field: str | None = None
    outcome: ClassVar[InboundOutcome] = InboundOutcome.REJECTED
    retryable: ClassVar[bool] = False


type InboundResult[T] = Handled[T] | Ignored | Rejected
"""What a channel's parser makes of one inbound request."""


class ContactEffect(StrEnum):
    """What a permanent send error says about the person's address."""

    OPTED_OUT = "opted_out"  # they opted out at the provider (Twilio 21610): never message them
    INVALID = "invalid"  # not a mobile number / not a number at all
    UNREACHABLE = "unreachable"  # unknown, switched off, blocked the bot, the carrier refuses


class SendError(Exception):
    """Sending failed. ``retryable`` says whether trying again later can help.

    ``retry_after`` is the wait the provider asked for (seconds). ``maybe_sent`` is True
    when the request may have reached the provider (a timeout after sending): a retry might
    duplicate it. ``contact_effect`` tells what the error means for the person.
    """

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        reason: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
        maybe_sent: bool = False,
        contact_effect: ContactEffect | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent
        self.contact_effect = contact_effect

    @property
    def contact_unreachable(self) -> bool:
        return self.contact_effect is not None and self.contact_effect != ContactEffect.OPTED_OUT

    @property
    def error_code(self) -> str:
        """What the outbox stores: the provider's code, else the HTTP status, else the kind."""
        if self.code:
            return self.code
        if self.http_status:
            return str(self.http_status)
        return "unknown" if self.maybe_sent else "network"

    def describe(self) -> str:
        parts = [f"HTTP {self.http_status}" if self.http_status else None]
        parts.append(f"code {self.code}" if self.code else None)
        head = ", ".join(p for p in parts if p)
        return f"{head}: {self}" if head else str(self)


class RetryableSendError(SendError):
    """429, 5xx, network trouble: try again after a back-off (or ``retry_after``)."""

    retryable = True


class PermanentSendError(SendError):
    """Trying again cannot help (opted out, invalid number, blocked, bad request)."""

    retryable = False


@dataclass(frozen=True)
class Sent:
    """A message the provider accepted, with the id its status updates will carry."""

    provider_id: str


class OutboxSender(Protocol):
    """What an outbox worker (``service.outbox``) sends through: one outgoing message to one
    address. Raises ``SendError``; returns what the provider accepted."""

    @property
    def channel(self) -> str: ...

    def send_outgoing(
        self, address: str, message: Outgoing, *, status_callback: str | None = None
    ) -> Sent: ...
