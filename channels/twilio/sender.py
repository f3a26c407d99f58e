"""Sending SMS through Twilio's Messages API with the real ``twilio`` SDK client.

``TwilioSender`` sends one message and turns every failure into a ``SendError`` that
says whether a retry can help and what it means for the contact.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from bot.clean import clean_text
from bot.messages import Outgoing
from channels.base import PermanentSendError, RetryableSendError, SendError, Sent
from channels.twilio import CHANNEL
from channels.twilio.http import TwilioHttp
from channels.twilio.status import CONTACT_EFFECTS, STATUS_MAP
from channels.twilio.twiml import MAX_OUTBOUND_CHARS, sms_text


@dataclass(frozen=True)
class SendResult(Sent):
    """What Twilio accepted: ``provider_id`` is the MessageSid."""

    status: str  # storage vocabulary (queued for a fresh send)
    twilio_status: str
    num_segments: int | None = None

    @property
    def sid(self) -> str:
        return self.provider_id


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify_rest_error(
    http_status: int, code: int | None, message: str, retry_after: float | None
) -> SendError:
    """The typed error for an HTTP error answer of the Messages API."""
    effect = CONTACT_EFFECTS.get(code) if code is not None else None
    text_code = str(code) if code else None
    if effect is not None:
        return PermanentSendError(
            message, http_status=http_status, code=text_code, contact_effect=effect
        )
    if http_status == 429 or code == 20429 or http_status >= 500:
        return RetryableSendError(
            message, http_status=http_status, code=text_code, retry_after=retry_after
        )
    return PermanentSendError(message, http_status=http_status, code=text_code)


class TwilioSender:
    """Sends SMS through the Messages API with the ``twilio`` SDK ``Client``.

    ``base_url`` replaces ``https://api.twilio.com`` (tests and the bench point it at a
    loopback fake). Send either from a number (``from_number``) or through a Messaging
    Service (``messaging_service_sid``). Thread-safe.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str = "",
        messaging_service_sid: str = "",
        base_url: str = "https://api.twilio.com",
        timeout: float = 15.0,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set to send SMS.")
        if not from_number and not messaging_service_sid:
            raise ValueError("Set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID to send SMS.")
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self._http = TwilioHttp(timeout, base_url)
        self.client = Client(account_sid, auth_token, http_client=self._http, environment={})
        # The Api domain's base URL is what every Messages request is built on.
        self.client.api.base_url = base_url.rstrip("/")

    @property
    def sender_key(self) -> str:
        """The identity the per-sender rate limit is kept under."""
        return self.from_number or self.messaging_service_sid

    channel = CHANNEL

    def send_outgoing(
        self, address: str, message: Outgoing, *, status_callback: str | None = None
    ) -> SendResult:
        """``OutboxSender``: one outgoing message as an SMS (SMS has no buttons)."""
        return self.send(address, sms_text(message), status_callback=status_callback)

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> SendResult:
        kwargs: dict[str, Any] = {"to": to, "body": clean_text(body)[:MAX_OUTBOUND_CHARS]}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            kwargs["from_"] = self.from_number
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            raise self._rest_error(exc) from exc
        except requests.exceptions.ConnectTimeout as exc:
            raise RetryableSendError(f"Twilio could not be reached: {exc}") from exc
        except requests.exceptions.ConnectionError as exc:
            # Refused before sending, or dropped after the request went out: we cannot tell.
            refused = "refused" in str(exc).lower()
            raise RetryableSendError(
                f"Connection to Twilio failed: {exc}", maybe_sent=not refused
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise RetryableSendError(
                f"Twilio did not answer in time: {exc}", maybe_sent=True
            ) from exc
        except requests.exceptions.RequestException as exc:
            reason = f"HTTP error talking to Twilio: {exc}"
            raise RetryableSendError(reason, maybe_sent=True) from exc
        except TwilioException as exc:  # e.g. an unparsable answer
            reason = f"Unexpected answer from Twilio: {exc}"
            raise RetryableSendError(reason, maybe_sent=True) from exc
        twilio_status = str(message.status or "queued")
        try:
            segments = int(message.num_segments) if message.num_segments is not None else None
        except (TypeError, ValueError):
            segments = None
        return SendResult(
            provider_id=str(message.sid),
            status=STATUS_MAP.get(twilio_status, "queued"),
            twilio_status=twilio_status,
            num_segments=segments,
        )

    def _rest_error(self, exc: TwilioRestException) -> SendError:
        """Twilio's error answer, classified (with the Retry-After it came with)."""
        retry_after = parse_retry_after(self._http.last_header("Retry-After"))
        code = exc.code if isinstance(exc.code, int) else None
        return classify_rest_error(exc.status, code, str(exc.msg), retry_after)

    def find_sent(self, to: str, body: str, since: datetime) -> str | None:
        """The sid of a message already sent to ``to`` with ``body`` since ``since``.

        Used after an unknown outcome (crash or timeout after the request went out) to
        find out whether Twilio has it before sending again.
        """
        try:
            # DateSent stays empty while a message is queued, so filter on date_created here.
            kwargs: dict[str, Any] = {"to": to, "limit": 50}
            if self.from_number:
                kwargs["from_"] = self.from_number
            messages = self.client.messages.list(**kwargs)
        except TwilioRestException as exc:
            raise self._rest_error(exc) from exc
        except requests.exceptions.RequestException as exc:
            raise RetryableSendError(f"Twilio could not be reached: {exc}") from exc
        wanted = clean_text(body)[:MAX_OUTBOUND_CHARS]
        for message in messages:
            created = message.date_created
            if created is not None and created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            if created is not None and created < since.replace(microsecond=0):
                continue
            if message.body == wanted and not str(message.direction or "").startswith("inbound"):
                return str(message.sid)
        return None
