"""Twilio webhooks: inbound SMS and delivery status callbacks.

    POST /webhooks/twilio/sms      an inbound SMS/MMS -> TwiML with the first reply
    POST /webhooks/twilio/status   a status callback for a message we sent

Both check ``X-Twilio-Signature`` over the public URL Twilio called (``PUBLIC_BASE_URL``,
or trusted ``X-Forwarded-*`` headers, else the URL as seen). A missing or wrong signature
gets 403 and changes nothing. ``TWILIO_SKIP_SIGNATURE_CHECK=true`` switches the check off
for development only, and a warning is logged when the app starts.

A redelivered MessageSid gets the same TwiML again and nothing is stored twice
(``ConversationService.handle`` dedupes on it). The first reply travels in the TwiML
response; further replies wait in the outbox for ``palaute outbox run``.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState

from bot.language import language_for_phone
from channels.base import Ignored
from channels.twilio.inbound import InvalidWebhook, parse_inbound
from channels.twilio.signature import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    public_url,
    verify_signature,
)
from channels.twilio.status import parse_status
from channels.twilio.twiml import render_twiml
from palaute.web import now, services
from service.delivery_status import record_status
from service.errors import StorageError

log = logging.getLogger(__name__)

bp = Blueprint("twilio", __name__, url_prefix="/webhooks/twilio")

# Replies sent in the TwiML answer; the rest go through the outbox (ordered, rate limited).
INLINE_REPLIES = 1

# When something unexpected breaks, the citizen still gets a short, polite answer.
SORRY = {
    "fi": "Pahoittelut, viestisi käsittely epäonnistui. Yritä hetken päästä uudelleen.",
    "sv": "Tyvärr kunde ditt meddelande inte behandlas. Försök igen om en stund.",
    "en": "Sorry, we could not handle your message. Please try again in a moment.",
}


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
    url = public_url(
        scheme=request.scheme,
        host=request.host,
        path=request.script_root + request.path,
        query_string=request.query_string.decode("latin-1"),
        headers=request.headers,
        public_base_url=settings.public_base_url,
        trust_forwarded_headers=settings.trust_forwarded_headers,
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


def _unavailable(error: StorageError) -> Response:
    log.warning("Twilio webhook: storage unavailable (%s); asking Twilio to retry", error)
    response = _text("Temporarily unavailable, please retry.", 503)
    response.headers["Retry-After"] = "1"
    return response


@bp.post("/sms")
def inbound_sms() -> Response:
    if not _signed():
        return _text("Invalid Twilio signature.", 403)
    try:
        inbound = parse_inbound(request.form)
    except InvalidWebhook as error:
        log.warning("Twilio inbound webhook rejected: %s", error)
        return _text(f"Not a Twilio message: {error}", 400)
    try:
        result = services().conversations.handle(inbound, now(), inline_limit=INLINE_REPLIES)
    except StorageError as error:
        if error.retryable:
            return _unavailable(error)
        log.exception("Twilio inbound %s: storage failed", inbound.provider_id)
        return _twiml(render_twiml([_sorry(inbound.address)]))
    except Exception:  # a bug must not leave the citizen without any answer
        log.exception("Twilio inbound %s could not be handled", inbound.provider_id)
        return _twiml(render_twiml([_sorry(inbound.address)]))
    return _twiml(render_twiml(result.replies))


def _sorry(address: str) -> str:
    language = language_for_phone(address) or "fi"
    return SORRY.get(language, SORRY["en"])


@bp.post("/status")
def status_callback() -> Response:
    if not _signed():
        return _text("Invalid Twilio signature.", 403)
    try:
        update = parse_status(request.form)
    except InvalidWebhook as error:
        return _text(f"Not a Twilio status callback: {error}", 400)
    if isinstance(update, Ignored):
        log.info("Twilio status callback ignored: %s", update.reason)
        return _text(update.outcome.value, 200)
    message_id = _message_id(request.args.get("m"))
    try:
        container = services()
        outcome = record_status(
            container.db, container.conversations.contacts, update, message_id, now()
        )
    except StorageError as error:
        if error.retryable:
            return _unavailable(error)
        raise
    return _text(outcome.value, 200)


def _message_id(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None
