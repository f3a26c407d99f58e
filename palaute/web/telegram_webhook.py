"""``POST /webhooks/telegram``: Bot API updates in, one Bot API call out in the response.

Register the webhook with ``palaute telegram set-webhook`` (it sets the secret token and
``allowed_updates``). Each request:

1. must carry ``X-Telegram-Bot-Api-Secret-Token`` equal to TELEGRAM_WEBHOOK_SECRET
   (constant-time comparison); otherwise 403 and nothing is read or recorded. With no
   secret configured every update is refused: an open webhook would let anyone post
   answers in any chat's name;
2. is parsed by ``channels.telegram.updates.parse_update``. A malformed body is rejected
   (400, ``{"error": reason}``); ignored updates (groups, channel posts, edits, other
   update types) get an empty 200 so Telegram does not resend them (logged at debug);
3. ``my_chat_member`` "kicked" marks the contact unreachable (the worker stops sending);
   starting the bot again clears it;
4. a message goes through ``ConversationService.handle`` with ``inline_limit=1``: the
   update_id (with the chat and message id) is the idempotency key (a redelivered update
   is answered with the stored reply and recorded only once), the contact is locked so
   one chat's updates are handled in order, and replies after the first wait in the
   outbox. A button press goes through ``handle_guarded``: the same, plus the press's
   own check and bookkeeping (below) in that one transaction.

The first reply is returned as the response body, ``{"method": "sendMessage", ...}``:
the Bot API makes that call for us, so the citizen sees the next question without a
round trip of our own and the web worker never needs python-telegram-bot's event loop.
A button press also needs ``answerCallbackQuery`` (the button's spinner) and
``editMessageText`` (show the chosen answer, remove the buttons so they can't be pressed
twice); those are stored (``storage.telegram``) for the Telegram worker, atomically
with the answer. A press on the buttons of an earlier question records nothing: it is
answered with a short notice and its buttons are removed.
"""

from __future__ import annotations

import hmac
import json
import logging
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from channels.base import Handled, Ignored, Rejected
from channels.telegram import keyboards, updates
from palaute.web import now, services, unstored
from palaute.web.json_body import read_json
from service.conversations import HandleResult
from service.errors import StorageError
from service.telegram_presses import press_guard, set_reachable

log = logging.getLogger(__name__)

bp = Blueprint("telegram_webhook", __name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _empty() -> Response:
    return Response(status=200)


def _refuse(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), status


def secret_ok(given: str | None, expected: str) -> bool:
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


@bp.post("/webhooks/telegram")
def telegram_webhook() -> Any:
    container = services()
    if not secret_ok(
        request.headers.get(SECRET_HEADER), container.settings.telegram_webhook_secret
    ):
        if not container.settings.telegram_webhook_secret:
            log.error("Telegram update refused: TELEGRAM_WEBHOOK_SECRET is not set")
        else:
            log.warning("Telegram update refused: wrong or missing %s", SECRET_HEADER)
        return _refuse(403, "forbidden")

    match updates.parse_update(read_json(want_object=True)):
        case Rejected() as rejected:
            log.warning("Telegram update rejected: %s", rejected.reason)
            return _refuse(rejected.status, rejected.reason)
        case Ignored() as ignored:
            log.debug("Telegram update %s ignored: %s", ignored.request_id, ignored.reason)
            return _empty()
        case Handled(update):
            pass
    when = now()
    try:
        match update:
            case updates.ChatReachability(chat_id=chat, reachable=reachable):
                set_reachable(container.db, container.conversations.contacts, chat, reachable, when)
                return _empty()
            case updates.ChatMessage() as message:
                return _conversation(message, when)
    except StorageError as error:
        # Telegram redelivers after a non-2xx answer; the update_id keeps it single.
        status, headers = unstored(f"Telegram update {update.update_id}", error)
        body, _ = _refuse(status, "not stored; try again later")
        body.headers.update(headers)
        return body, status


def _conversation(parsed: updates.ChatMessage, when: datetime) -> Response:
    container = services()
    inbound, press, chat = parsed.inbound, parsed.callback, parsed.chat_id

    result: HandleResult | None
    if press is None:
        result = container.conversations.handle(inbound, when, inline_limit=1)
    else:
        result = container.conversations.handle_guarded(
            inbound, when, press_guard(press, when), inline_limit=1
        )
    if result is None:
        assert press is not None
        # A button of an earlier question: nothing recorded; say so (its buttons go).
        toast = keyboards.already_answered(parsed.language_hint)
        return _call("answerCallbackQuery", keyboards.answer_callback_params(press, toast))
    if result.replies:
        return _call("sendMessage", keyboards.send_message_params(result.replies[0], chat))
    if press is not None:  # no reply (e.g. opted out): still stop the button's spinner now
        return _call("answerCallbackQuery", keyboards.answer_callback_params(press))
    return _empty()


def _call(method: str, params: dict[str, Any]) -> Response:
    """A Bot API call as the response body (the Bot API makes it for us)."""
    body = json.dumps(keyboards.webhook_reply(method, params), ensure_ascii=False)
    return Response(body, status=200, mimetype="application/json")
