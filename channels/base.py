"""What both providers' channel packages share: errors, inbound outcomes, the sender protocol.

* ``SendError``: a send failed. ``RetryableSendError`` (trying again later can help: 429,
  5xx, network) or ``PermanentSendError`` (it cannot: bad number, blocked, bad request).
  ``code`` is the provider's code as text, the one type stored in ``messages.error_code``
  (Twilio's ``21610``, Telegram's ``403`` or ``400_chat_not_found``...). ``contact_effect``
  says what the failure means for the person.
* Inbound requests have one of three outcomes (as in nyaruka/courier): handled, ignored
  (a request we deliberately do not act on: answered 200 so the provider does not resend
  it) or rejected (``Rejected``: it cannot be a provider request; resending it unchanged
  cannot help, the web layer answers 400).
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


class Rejected(ValueError):
    """The request cannot be what the provider sends. Resending it unchanged cannot help."""

    outcome: ClassVar[InboundOutcome] = InboundOutcome.REJECTED
    retryable: ClassVar[bool] = False


@dataclass(frozen=True)
class Ignored:
    """A well-formed request palaute deliberately does not act on, and why."""

    reason: str
    outcome: ClassVar[InboundOutcome] = InboundOutcome.IGNORED


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
