"""Twilio webhooks: inbound SMS and delivery status callbacks.

    POST /webhooks/twilio/sms      an inbound SMS/MMS -> TwiML with the first reply
    POST /webhooks/twilio/status   a status callback for a message we sent

Both check ``X-Twilio-Signature`` over the public URL Twilio called (``PUBLIC_BASE_URL``,
else the URL as the app sees it, which behind a trusted proxy is ProxyFix's result). A
missing or wrong signature gets 403 and changes nothing. ``TWILIO_SKIP_SIGNATURE_CHECK=true``
switches the check off for development only, and a warning is logged when the app starts.

A redelivered MessageSid gets the same TwiML again and nothing is stored twice
(``ConversationService.handle`` dedupes on it). The first reply travels in the TwiML
response; further replies wait in the outbox for ``palaute outbox run``.

Nothing stored, nothing acknowledged: when the database cannot take the message or the
status, the answer is 503 (busy: ``Retry-After``) or 500 (e.g. not migrated), never a 200
with an apology, so Twilio logs a failed webhook (error 11200) and calls the number's
fallback URL when one is set. An unexpected bug also ends in a 500 (Flask's own).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState

from channels.base import Handled, Ignored, Rejected
from channels.twilio.inbound import parse_inbound
from channels.twilio.signature import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    public_url,
    verify_signature,
)
from channels.twilio.status import parse_status
from channels.twilio.twiml import render_twiml
from palaute.web import now, services, unstored
from service.delivery_status import record_status
from service.errors import StorageError

log = logging.getLogger(__name__)

bp = Blueprint("twilio", __name__, url_prefix="/webhooks/twilio")

# Replies sent in the TwiML answer; the rest go through the outbox (ordered, rate limited).
INLINE_REPLIES = 1


@bp.record_once
def _warn_when_unsigned(state: BlueprintSetupState) -> None:
    settings = state.app.extensions["palaute"].settings
    if settings.twilio_skip_signature_check:
        log.warning(
            "TWILIO_SKIP_SIGNATURE_CHECK is on: Twilio webhooks are accepted WITHOUT a "
            "signature check. Never use this in production."
        )
    elif not settings.twilio_auth_token:
        log.warning("TWILIO_AUTH_TOKEN is not set: every Twilio webhook will be refused (403).")


def _twiml(xml: str, status: int = 200) -> Response:
    return Response(xml, status=status, mimetype="text/xml")


def _text(body: str, status: int) -> Response:
    return Response(body + "\n", status=status, mimetype="text/plain")


def _signed() -> bool:
    """True when the request carries Twilio's valid signature (or checks are off)."""
    settings = services().settings
    if settings.twilio_skip_signature_check:
        return True
    url = public_url(  # scheme and host after ProxyFix (TRUST_FORWARDED_HEADERS)
        scheme=request.scheme,
        host=request.host,
        path=request.script_root + request.path,
        query_string=request.query_string.decode("latin-1"),
        public_base_url=settings.public_base_url,
    )
    ok = verify_signature(
        settings.twilio_auth_token,
        url,
        request.form,
        request.headers.get(SIGNATURE_HEADER),
        request.headers.get(SIGNATURE_SETTINGS_HEADER),
    )
    if not ok:
        log.warning(
            "refused a Twilio webhook to %s: %s signature",
            url,
            "wrong" if request.headers.get(SIGNATURE_HEADER) else "missing",
        )
    return ok


def _unstored(what: str, error: StorageError) -> Response:
    """Not 2xx when nothing was stored: Twilio must not take the message as delivered."""
    status, headers = unstored(what, error)
    body = "Temporarily unavailable, please retry." if status == 503 else "Not stored."
    response = _text(body, status)
    response.headers.update(headers)
    return response


@bp.post("/sms")
def inbound_sms() -> Response:
    if not _signed():
        return _text("Invalid Twilio signature.", 403)
    match parse_inbound(request.form):
        case Rejected() as rejected:
            log.warning("Twilio inbound webhook rejected: %s", rejected.reason)
            return _text(f"Not a Twilio message: {rejected.reason}", rejected.status)
        case Handled(inbound):
            pass
    try:
        result = services().conversations.handle(inbound, now(), inline_limit=INLINE_REPLIES)
    except StorageError as error:
        return _unstored(f"Twilio inbound {inbound.provider_id}", error)
    return _twiml(render_twiml(result.replies))


@bp.post("/status")
def status_callback() -> Response:
    if not _signed():
        return _text("Invalid Twilio signature.", 403)
    match parse_status(request.form):
        case Rejected() as rejected:
            return _text(f"Not a Twilio status callback: {rejected.reason}", rejected.status)
        case Ignored() as ignored:
            log.debug("Twilio status callback %s ignored: %s", ignored.request_id, ignored.reason)
            return _text(ignored.outcome.value, 200)
        case Handled(update):
            pass
    message_id = _message_id(request.args.get("m"))
    container = services()
    try:
        outcome = record_status(
            container.db, container.conversations.contacts, update, message_id, now()
        )
    except StorageError as error:
        return _unstored(f"Twilio status {update.status} for {update.sid}", error)
    return _text(outcome.value, 200)


def _message_id(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None
