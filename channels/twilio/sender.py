"""Twilio SMS: translate between Twilio's webhook/REST shapes and the core's messages.

Nothing here knows about Flask or the database. The web layer hands in the request's
URL parts, headers and form fields; the outbox worker hands in a number and a text.

* ``public_url`` rebuilds the URL Twilio called (the one it signed) behind a proxy.
* ``verify_signature`` checks ``X-Twilio-Signature`` with the SDK's ``RequestValidator``.
* ``parse_inbound`` turns the inbound form into ``bot.messages.Inbound`` (or rejects it).
* ``parse_status`` turns a status callback into a ``StatusUpdate``.
* ``render_twiml`` renders replies as a TwiML ``<Response>``.
* ``TwilioSender`` sends one message with the real ``twilio`` SDK client and turns every
  failure into a ``SendError`` that says whether a retry can help and what it means for
  the contact.
"""

from __future__ import annotations

import email.utils
import hmac
import json
import logging
import os
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit
from xml.sax.saxutils import escape

import certifi
import requests
import urllib3
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.rest import Client

from bot.messages import Inbound, InboundKind, Outgoing

log = logging.getLogger(__name__)

CHANNEL = "sms"
SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"

# Twilio concatenates inbound SMS up to 1600 characters; anything longer is not a real SMS.
# We keep a little more so the engine can still tell "too long" apart from "cut by us".
MAX_INBOUND_CHARS = 2000
# Twilio refuses outbound bodies longer than 1600 characters.
MAX_OUTBOUND_CHARS = 1600

# Twilio's OptOutType values (Advanced Opt-Out), passed to the core as Inbound.provider_keyword.
OPT_OUT_TYPES = frozenset({"STOP", "START", "HELP"})

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# --------------------------------------------------------------------------------------
# Public URL and signatures
# --------------------------------------------------------------------------------------


class HeaderLookup(Protocol):
    """Anything with ``get(name)``: a dict, Werkzeug's ``Headers``..."""

    def get(self, key: str, /) -> str | None: ...


def _first(value: str | None) -> str:
    return (value or "").split(",")[0].strip()


def public_url(
    *,
    scheme: str,
    host: str,
    path: str,
    query_string: str = "",
    headers: HeaderLookup | None = None,
    public_base_url: str | None = None,
    trust_forwarded_headers: bool = False,
) -> str:
    """The URL Twilio called, which is what it signed.

    ``path`` is the request path as received (with any script root), ``query_string`` the
    raw query without ``?``. ``PUBLIC_BASE_URL`` wins over forwarded headers; forwarded
    headers are used only when trusted; otherwise the URL the server saw is used.
    """
    query = f"?{query_string}" if query_string else ""
    if public_base_url:
        base = urlsplit(public_base_url.strip())
        prefix = base.path.rstrip("/")
        full_path = path if prefix and path.startswith(prefix + "/") else prefix + path
        return urlunsplit((base.scheme, base.netloc, full_path, "", "")) + query
    if trust_forwarded_headers and headers is not None:
        proto = _first(headers.get("X-Forwarded-Proto")) or scheme
        fwd_host = _first(headers.get("X-Forwarded-Host")) or host
        port = _first(headers.get("X-Forwarded-Port"))
        default_port = "443" if proto == "https" else "80"
        netloc_host, _, netloc_port = fwd_host.rpartition(":")
        if not netloc_host or "]" in netloc_port:  # no port in the host (or bare IPv6)
            netloc_host, netloc_port = fwd_host, ""
        if port and not netloc_port:
            netloc_port = port
        netloc = netloc_host
        if netloc_port not in ("", default_port):
            netloc = f"{netloc_host}:{netloc_port}"
        prefix = _first(headers.get("X-Forwarded-Prefix")).rstrip("/")
        return f"{proto}://{netloc}{prefix}{path}{query}"
    return f"{scheme}://{host}{path}{query}"


def verify_signature(
    auth_token: str,
    url: str,
    params: Mapping[str, Any],
    signature: str | None,
    signature_settings: str | None = None,
) -> bool:
    """True when ``signature`` is Twilio's signature of ``url`` + ``params``.

    ``params`` may be a plain dict or a multi-dict (Flask's ``request.form``); every field
    that arrived counts, including ones we do not know.
    """
    if not auth_token or not signature:
        return False
    validator = RequestValidator(auth_token)
    algorithm = get_signature_algorithm(signature_settings)
    if "bodySHA256=" not in url:
        # The common case first: one HMAC over the URL exactly as rebuilt.
        try:
            expected = validator.compute_signature(url, params, algorithm)
        except ValueError:  # an algorithm this SDK does not know
            return False
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return True
    # validate() also tries the URL with and without the default port, as Twilio's own
    # signing has not always been consistent about it.
    return bool(validator.validate(url, params, signature, algorithm=algorithm))


def compute_signature(auth_token: str, url: str, params: Mapping[str, Any]) -> str:
    """The ``X-Twilio-Signature`` Twilio would send (for tests, the fake and the bench)."""
    return str(RequestValidator(auth_token).compute_signature(url, params))


# --------------------------------------------------------------------------------------
# Inbound messages
# --------------------------------------------------------------------------------------


class RejectReason(StrEnum):
    NO_SENDER = "no_sender"
    NO_MESSAGE_SID = "no_message_sid"


class InvalidWebhook(ValueError):
    """The form cannot be a Twilio message at all (no sender or no MessageSid).

    Retrying the same request cannot help. The web layer answers 400 with ``str(self)``.
    """

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def clean_text(text: str) -> str:
    """Text safe to store and to put into XML: NFC, no NULs/control characters, valid UTF-8."""
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> '?'
    text = unicodedata.normalize("NFC", text)
    return _XML_INVALID.sub("", text)


def _get(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def parse_inbound(form: Mapping[str, Any]) -> Inbound:
    """The inbound message in a Twilio webhook form.

    Unknown fields are ignored. A missing ``Body`` counts as empty. A message with media
    and no text becomes ``InboundKind.MEDIA`` (the core re-prompts). ``OptOutType`` (also
    for custom keywords set in the Messaging Service) becomes ``provider_keyword`` and the
    body stays what the citizen sent. Raises ``InvalidWebhook`` without From or MessageSid.
    """
    sender = _get(form, "From").strip()
    if not sender:
        raise InvalidWebhook(RejectReason.NO_SENDER, "The form has no From number.")
    sid = (_get(form, "MessageSid") or _get(form, "SmsMessageSid") or _get(form, "SmsSid")).strip()
    if not sid:
        raise InvalidWebhook(RejectReason.NO_MESSAGE_SID, "The form has no MessageSid.")
    body = clean_text(_get(form, "Body"))[:MAX_INBOUND_CHARS]
    try:
        num_media = int(_get(form, "NumMedia") or "0")
    except ValueError:
        num_media = 0
    opt_out_type = _get(form, "OptOutType").strip().upper()
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


# --------------------------------------------------------------------------------------
# Status callbacks
# --------------------------------------------------------------------------------------


class ContactEffect(StrEnum):
    """What a permanent error says about the person's number."""

    OPTED_OUT = "opted_out"  # they replied STOP to Twilio (21610): never message them
    INVALID = "invalid"  # not a mobile number / not a number at all
    UNREACHABLE = "unreachable"  # handset unknown, off, or the carrier refuses


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


class IgnoredStatus(ValueError):
    """A status callback we do not act on (e.g. ``received`` for an inbound message)."""


def _parse_dlr_date(raw: str) -> datetime | None:
    try:
        return datetime.strptime(raw, "%y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_status(form: Mapping[str, Any]) -> StatusUpdate:
    """A status callback as a ``StatusUpdate``; ``InvalidWebhook``/``IgnoredStatus`` otherwise."""
    sid = (_get(form, "MessageSid") or _get(form, "SmsSid")).strip()
    if not sid:
        raise InvalidWebhook(RejectReason.NO_MESSAGE_SID, "The form has no MessageSid.")
    twilio_status = (_get(form, "MessageStatus") or _get(form, "SmsStatus")).strip().lower()
    status = STATUS_MAP.get(twilio_status)
    if status is None:
        raise IgnoredStatus(f"Status {twilio_status!r} is not an outbound delivery status.")
    code_text = _get(form, "ErrorCode").strip()
    error_code = int(code_text) if code_text.isdigit() else None
    raw_done = _get(form, "RawDlrDoneDate").strip()
    return StatusUpdate(
        sid=sid,
        status=status,
        twilio_status=twilio_status,
        error_code=error_code,
        error_message=_get(form, "ErrorMessage").strip() or None,
        done_at=_parse_dlr_date(raw_done) if raw_done else None,
        to=_get(form, "To"),
        from_=_get(form, "From"),
    )


# --------------------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Sending
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    sid: str
    status: str  # storage vocabulary (queued for a fresh send)
    twilio_status: str
    num_segments: int | None = None


class SendError(Exception):
    """Sending failed. ``retryable`` says whether trying again later can help.

    ``retry_after`` is the wait Twilio asked for (seconds), ``maybe_sent`` is True when the
    request may have reached Twilio (timeout after sending): a retry might duplicate it,
    so the outbox records the attempt before trying again. ``contact_effect`` tells what
    the error means for the person (opted out, invalid or unreachable number).
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: int | None = None,
        retry_after: float | None = None,
        maybe_sent: bool = False,
        contact_effect: ContactEffect | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent
        self.contact_effect = contact_effect

    def describe(self) -> str:
        parts = [f"HTTP {self.http_status}" if self.http_status else None]
        parts.append(f"code {self.code}" if self.code else None)
        head = ", ".join(p for p in parts if p)
        return f"{head}: {self}" if head else str(self)


class RetryableSendError(SendError):
    """429, 5xx, network trouble: try again after a back-off."""

    retryable = True


class PermanentSendError(SendError):
    """Trying again cannot help (unsubscribed, invalid number, bad request, auth)."""

    retryable = False


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
    if effect is not None:
        return PermanentSendError(
            message, http_status=http_status, code=code, contact_effect=effect
        )
    if http_status == 429 or code == 20429 or http_status >= 500:
        return RetryableSendError(
            message, http_status=http_status, code=code, retry_after=retry_after
        )
    return PermanentSendError(message, http_status=http_status, code=code)


class _TwilioHttp(HttpClient):
    """The ``twilio`` SDK's HTTP port (``Client(http_client=...)``) on one urllib3 pool.

    The SDK's own client goes through a requests ``Session`` for every call (request
    preparation, hooks, cookies, re-reading proxy settings from the environment): on a
    fast link that is about half the CPU of a send. This one makes the same HTTP request
    (basic auth, form or JSON body, no redirects, no retries, a timeout) and gives the SDK
    the same ``Response``. Transport failures come out as the requests exceptions the SDK's
    client raises, so ``TwilioSender`` classifies them the same way. Each thread's last
    response headers are kept (``Retry-After`` is not carried by the SDK's exceptions).
    Proxy (``HTTPS_PROXY``/``NO_PROXY``) and CA bundle (``REQUESTS_CA_BUNDLE``) settings
    are read from the environment once, when the sender is made.
    """

    def __init__(self, timeout: float | None, base_url: str) -> None:
        super().__init__(logger=log, is_async=False, timeout=timeout)
        self._local = threading.local()
        scheme = urlsplit(base_url).scheme or "https"
        self.proxy = requests.utils.get_environ_proxies(base_url).get(scheme)
        self.ca_bundle = (
            os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or certifi.where()
        )
        options: dict[str, Any] = {"maxsize": 32, "ca_certs": self.ca_bundle}
        self._pool: urllib3.PoolManager = (
            urllib3.ProxyManager(self.proxy, **options)
            if self.proxy
            else urllib3.PoolManager(**options)
        )

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, object] | None = None,
        data: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        sent = dict(headers or {})
        if auth is not None:
            basic = urllib3.make_headers(basic_auth=f"{auth[0]}:{auth[1]}")
            sent["Authorization"] = basic["authorization"]
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        body: bytes | None = None
        if data is not None:
            if sent.get("Content-Type") in ("application/json", "application/scim+json"):
                body = json.dumps(data).encode()
            else:
                body = urlencode(data, doseq=True).encode()
                sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        self._local.headers = {}
        try:
            answer = self._pool.request(
                method.upper(),
                url,
                body=body,
                headers=sent,
                redirect=allow_redirects,
                retries=urllib3.Retry(0, read=False, redirect=0),
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
            )
        except urllib3.exceptions.HTTPError as exc:
            raise _as_requests_error(exc) from exc
        received = dict(answer.headers)
        self._local.headers = received
        return Response(answer.status, answer.data.decode("utf-8", "replace"), received)

    def last_header(self, name: str) -> str | None:
        headers: dict[str, str] = getattr(self._local, "headers", {}) or {}
        for key, value in headers.items():
            if key.lower() == name.lower():
                return value
        return None


def _as_requests_error(exc: urllib3.exceptions.HTTPError) -> requests.RequestException:
    """The requests exception the SDK's own client raises for this urllib3 failure."""
    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
        return requests.exceptions.ConnectTimeout(str(reason))
    if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
        return requests.exceptions.ReadTimeout(str(reason))
    if isinstance(reason, urllib3.exceptions.ProxyError):
        return requests.exceptions.ProxyError(str(reason))
    if isinstance(reason, urllib3.exceptions.SSLError):
        return requests.exceptions.SSLError(str(reason))
    if isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ProtocolError):
        return requests.exceptions.ConnectionError(str(reason))
    return requests.exceptions.RequestException(str(reason))


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
        self._http = _TwilioHttp(timeout, base_url)
        self.client = Client(account_sid, auth_token, http_client=self._http, environment={})
        # The Api domain's base URL is what every Messages request is built on.
        self.client.api.base_url = base_url.rstrip("/")

    @property
    def sender_key(self) -> str:
        """The identity the per-sender rate limit is kept under."""
        return self.from_number or self.messaging_service_sid

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
            sid=str(message.sid),
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
