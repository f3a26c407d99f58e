"""``POST /webhooks/telegram``: Bot API updates in, one Bot API call out in the response.

Register the webhook with ``palaute telegram set-webhook`` (it sets the secret token and
``allowed_updates``). Each request:

1. must carry ``X-Telegram-Bot-Api-Secret-Token`` equal to TELEGRAM_WEBHOOK_SECRET
   (constant-time comparison); otherwise 403 and nothing is read or recorded. With no
   secret configured every update is refused: an open webhook would let anyone post
   answers in any chat's name;
2. is parsed by ``channels.telegram.parse_update``. Ignored updates (groups, channel
   posts, edits, other update types) get an empty 200 so Telegram does not resend them;
3. ``my_chat_member`` "kicked" marks the contact unreachable (the worker stops sending);
   starting the bot again clears it;
4. a message or a button press goes through ``ConversationService.handle`` with
   ``inline_limit=1``: the update_id (with the chat and message id) is the idempotency
   key (a redelivered update is answered with the stored reply and recorded only once),
   the contact is locked so one chat's updates are handled in order, and replies after
   the first wait in the outbox.

The first reply is returned as the response body, ``{"method": "sendMessage", ...}``:
the Bot API makes that call for us, so the citizen sees the next question without a
round trip of our own and the web worker never needs python-telegram-bot's event loop.
A button press also needs ``answerCallbackQuery`` (the button's spinner) and
``editMessageText`` (show the chosen answer, remove the buttons so they can't be pressed
twice); those are stored (``storage.telegram``) for the Telegram worker. A press on
the buttons of an earlier question changes nothing: it is answered with a short notice.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import exc as sa_exc

from channels import telegram as channel
from palaute.web import now, services
from storage import telegram as telegram_store
from storage.db import transaction
from storage.errors import StorageError, translate

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

    try:
        parsed = channel.parse_update(request.get_json(force=True, silent=True))
    except channel.TelegramUpdateError as error:
        log.warning("Telegram update rejected: %s", error)
        return _refuse(400, str(error))

    when = now()
    try:
        if parsed.outcome is channel.UpdateOutcome.IGNORED:
            log.info("Telegram update %s ignored: %s", parsed.update_id, parsed.reason)
            return _empty()
        if parsed.outcome in (channel.UpdateOutcome.BLOCKED, channel.UpdateOutcome.UNBLOCKED):
            _reachability(parsed, when)
            return _empty()
        return _conversation(parsed, when)
    except StorageError as error:
        # Telegram redelivers after a non-2xx answer; the update_id keeps it single.
        log.error("Telegram update %s: storage error %s", parsed.update_id, error)
        return _refuse(503 if error.retryable else 500, "try again later")


def _reachability(parsed: channel.ParsedUpdate, when: Any) -> None:
    container = services()
    contacts = container.conversations.contacts
    assert parsed.chat_id is not None
    with transaction(container.db) as session:
        found = contacts.find(session, channel.CHANNEL, parsed.chat_id)
        if found is None:
            return
        if parsed.outcome is channel.UpdateOutcome.BLOCKED:
            contacts.mark_unreachable(session, found.id, "telegram: blocked the bot", when)
        else:
            contacts.clear_unreachable(session, found.id, when)
    log.info("Telegram chat %s: %s", found.id, parsed.outcome.value)


def _prepare_press(press: channel.CallbackPress, update_id: str, when: Any) -> bool:
    """Check a button press and store its answer/edit calls, in ONE short transaction.

    Returns True when the press is stale: a button of a question the chat's run no
    longer waits on (then only the buttons are removed, nothing is recorded). A press
    seen before (Telegram redelivered the update) stores nothing again; the conversation
    service answers it with the stored reply. The calls are stored before the answer is:
    if handling then fails, Telegram redelivers and the calls are stored twice, which is
    harmless (a second answerCallbackQuery or identical edit is refused and dropped).
    """
    container = services()
    chat = press.chat_id
    key = container.conversations.contacts.address_key(channel.CHANNEL, chat)
    calls: list[tuple[str, dict[str, Any]]] = []
    try:
        with container.db.begin() as connection:
            seen, step = telegram_store.press_context(connection, channel.CHANNEL, key, update_id)
            if seen:
                return False
            stale = press.step_id is not None and step != press.step_id
            if not stale:
                calls.append(("answerCallbackQuery", channel.answer_callback_params(press)))
            edit = channel.edit_chosen_params(press, chosen=not stale)
            if edit is not None:
                calls.append(("editMessageText", edit))
            telegram_store.enqueue_calls(connection, calls, chat, when)
    except sa_exc.DBAPIError as error:
        raise translate(error) from error
    return stale


def _conversation(parsed: channel.ParsedUpdate, when: Any) -> Any:
    container = services()
    inbound, press = parsed.inbound, parsed.callback
    assert inbound is not None and parsed.chat_id is not None
    chat = parsed.chat_id

    if press is not None and _prepare_press(press, str(inbound.provider_id), when):
        # A button of an earlier question: nothing to record; say so (its buttons go).
        toast = channel.already_answered(parsed.language_hint)
        return jsonify(
            channel.webhook_reply(
                "answerCallbackQuery", channel.answer_callback_params(press, toast)
            )
        )

    result = container.conversations.handle(inbound, when, inline_limit=1)
    if result.replies:
        return jsonify(
            channel.webhook_reply(
                "sendMessage", channel.send_message_params(result.replies[0], chat)
            )
        )
    if press is not None:  # no reply (e.g. opted out): still stop the button's spinner now
        return jsonify(
            channel.webhook_reply("answerCallbackQuery", channel.answer_callback_params(press))
        )
    return _empty()
