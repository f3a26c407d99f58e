"""Telegram updates: what the Bot API POSTs to the webhook -> core messages.

Like every channel module it only translates shapes; it makes no HTTP calls and keeps
no state. ``parse_update`` turns the JSON body the Bot API POSTs to the webhook into one
of the three outcomes every channel has (``channels.base``, as in nyaruka/courier):

* ``Handled(ChatMessage)``: an ``Inbound`` for the core (typed text, a pressed button,
  ``/start``, a command, or media such as a photo, sticker, voice note or location);
* ``Handled(ChatReachability)``: the person blocked the bot (``my_chat_member`` ->
  "kicked"), so the contact is unreachable until they start the bot again (reachable);
* ``Ignored``: anything we deliberately do not act on (groups, channel posts, edited
  messages, service messages, other update types), with the reason, the update_id as
  ``request_id`` and the chat as ``address``;
* ``Rejected``: a body that is not a Bot API update (400).

``Inbound.provider_id`` (the idempotency key) is the update_id together with the chat
and message id (``"<update_id>:<chat>:<message_id>"``) or the callback query id
(``"<update_id>:<query id>"``): a redelivered update repeats all of them, while Telegram
picks update_ids at random again after a week without updates, so the update_id alone
could one day repeat for a different message.

Commands (private chats only):

* ``/start CODE`` -> ``InboundKind.START`` with ``start_code=CODE`` (deep link
  ``https://t.me/<bot>?start=CODE``); plain ``/start`` -> START with no code.
* ``/stop``, ``/help`` and ``/language [code]`` -> TEXT ``"/stop"``, ``"/help"``,
  ``"/language sv"`` (without any ``@botname`` suffix): bot.keywords knows them next
  to the SMS words STOP/HELP/KIELI. Unknown commands become ``"/help"``.

Replies, keyboards and button callback data are in ``channels.telegram.keyboards``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from telegram import CallbackQuery, Message, Update
from telegram.constants import ChatMemberStatus, ChatType

from bot.clean import clean_text
from bot.messages import Inbound, InboundKind
from channels.base import Handled, Ignored, InboundResult, Rejected
from channels.telegram import CHANNEL
from channels.telegram.keyboards import START_CODE_RE, decode_callback_data

# Commands a person can type besides /start (`palaute telegram set-webhook` registers
# them with descriptions); the core (bot.keywords) recognises "/stop", "/help" and
# "/language" as text, next to the SMS keywords.
COMMANDS = ("stop", "help", "language")

# Message fields that carry something other than text, in the Bot API's names.
_MEDIA_FIELDS = (
    "photo",
    "sticker",
    "voice",
    "video_note",
    "video",
    "audio",
    "animation",
    "document",
    "location",
    "venue",
    "contact",
    "poll",
    "dice",
    "story",
    "paid_media",
)

_COMMAND_RE = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{3,64}))?(?:\s+(.*))?$", re.S)


class _Malformed(Exception):
    """The webhook body is not a Bot API update; ``parse_update`` makes it ``Rejected``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class CallbackPress:
    """A pressed inline-keyboard button: what we need to answer it and edit its message."""

    query_id: str
    chat_id: str
    message_id: int | None  # None when Telegram no longer shows us the message (> 48 h)
    message_text: str  # the question as it was shown
    step_id: str | None  # the step the keyboard was sent for
    value: str
    label: str | None  # the pressed button's text, read from the message's keyboard


@dataclass(frozen=True)
class ChatMessage:
    """A person wrote, pressed a button or sent media in a private chat."""

    update_id: int
    chat_id: str
    inbound: Inbound
    callback: CallbackPress | None = None  # a pressed button: answer it, edit its message
    language_hint: str | None = None


@dataclass(frozen=True)
class ChatReachability:
    """The person blocked the bot (``reachable=False``) or started it again."""

    update_id: int
    chat_id: str
    reachable: bool


type TelegramUpdate = ChatMessage | ChatReachability
"""What a handled update carries."""


# --------------------------------------------------------------------------------------
# Incoming
# --------------------------------------------------------------------------------------


def language_hint(code: str | None) -> str | None:
    """``"fi"`` from ``"fi"``, ``"en"`` from ``"en-US"``; None for a missing code."""
    if not code:
        return None
    primary = code.strip().split("-")[0].split("_")[0].lower()
    return primary if primary.isalpha() and 2 <= len(primary) <= 3 else None


def parse_update(payload: Mapping[str, Any] | None) -> InboundResult[TelegramUpdate]:
    """Translate one webhook body: handled, ignored (why), or rejected when malformed."""
    try:
        return _parse(payload)
    except _Malformed as malformed:
        return Rejected(str(malformed), field=malformed.field)


def _parse(payload: Mapping[str, Any] | None) -> Handled[TelegramUpdate] | Ignored:
    if not isinstance(payload, Mapping):
        raise _Malformed("body", "body: expected a JSON object (a Bot API Update)")
    update_id = payload.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise _Malformed("update_id", "update_id: missing or not an integer")
    # de_json builds the objects without checking the JSON types of their fields: a
    # field of the wrong type shows while we read it, and is the same rejection.
    try:
        update = Update.de_json(dict(payload), bot=None)
        return _translate(update_id, update, payload)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _Malformed("body", f"body: not a Bot API Update ({exc})") from exc


def _translate(
    update_id: int, update: Update, payload: Mapping[str, Any]
) -> Handled[TelegramUpdate] | Ignored:
    if update.message is not None:
        return _parse_message(update_id, update.message)
    if update.callback_query is not None:
        return _parse_callback(update_id, update.callback_query)
    if update.my_chat_member is not None:
        member = update.my_chat_member
        chat_id = _id_of_chat(member.chat)
        if member.chat.type != ChatType.PRIVATE:
            return _ignored(update_id, f"my_chat_member in a {member.chat.type} chat", chat_id)
        new_status = member.new_chat_member.status
        if new_status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT):
            return Handled(ChatReachability(update_id, chat_id, reachable=False))
        if new_status == ChatMemberStatus.MEMBER and member.old_chat_member.status in (
            ChatMemberStatus.BANNED,
            ChatMemberStatus.LEFT,
        ):
            return Handled(ChatReachability(update_id, chat_id, reachable=True))
        return _ignored(update_id, f"my_chat_member status {new_status}", chat_id)
    if update.edited_message is not None:
        return _ignored(
            update_id, "edited message (the first version was already read)", _chat(update)
        )
    if update.channel_post is not None or update.edited_channel_post is not None:
        return _ignored(update_id, "channel post", _chat(update))
    kinds = sorted(k for k in payload if k != "update_id")
    return _ignored(update_id, f"update type {', '.join(kinds) or 'empty'} is not used")


def _chat(update: Update) -> str | None:
    chat = update.effective_chat
    return _id_of_chat(chat) if chat is not None else None


def _id_of_chat(chat: Any) -> str:
    if not isinstance(chat.id, int) or isinstance(chat.id, bool):
        raise TypeError("chat.id: not an integer")
    return str(chat.id)


def _optional_text(value: Any, field: str) -> str | None:
    """A text field of the update, cleaned (``bot.clean``: no NULs or control characters)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{field}: not a string")
    return clean_text(value)


def _ignored(update_id: int, reason: str, chat_id: str | None = None) -> Ignored:
    return Ignored(reason, request_id=str(update_id), address=chat_id)


def _parse_message(update_id: int, message: Message) -> Handled[TelegramUpdate] | Ignored:
    chat_id = _id_of_chat(message.chat)
    if message.chat.type != ChatType.PRIVATE:
        return _ignored(update_id, f"message in a {message.chat.type} chat", chat_id)
    user = message.from_user
    if user is None or user.is_bot or message.sender_chat is not None:
        return _ignored(update_id, "message not sent by a person", chat_id)
    hint = language_hint(_optional_text(user.language_code, "from.language_code"))
    text_field = _optional_text(message.text, "text")

    def inbound(
        text: str, kind: InboundKind, start_code: str | None = None
    ) -> Handled[TelegramUpdate]:
        return Handled(
            ChatMessage(
                update_id,
                chat_id,
                language_hint=hint,
                inbound=Inbound(
                    channel=CHANNEL,
                    address=chat_id,
                    text=text,
                    kind=kind,
                    provider_id=f"{update_id}:{chat_id}:{message.message_id}",
                    language_hint=hint,
                    start_code=start_code,
                ),
            )
        )

    if text_field is not None:
        text = text_field.strip()
        command = _COMMAND_RE.match(text) if text.startswith("/") else None
        if command is None:
            return inbound(text_field, InboundKind.TEXT)
        name, argument = command.group(1).lower(), (command.group(3) or "").strip()
        if name == "start":
            code = argument if START_CODE_RE.fullmatch(argument) else None
            return inbound(text, InboundKind.START, start_code=code)
        if name not in COMMANDS:
            return inbound("/help", InboundKind.TEXT)
        return inbound(f"/{name} {argument}".strip(), InboundKind.TEXT)
    if any(getattr(message, name, None) for name in _MEDIA_FIELDS):
        return inbound(_optional_text(message.caption, "caption") or "", InboundKind.MEDIA)
    return _ignored(update_id, "service message without text", chat_id)


def _parse_callback(update_id: int, query: CallbackQuery) -> Handled[TelegramUpdate] | Ignored:
    message = query.message
    if message is not None:
        chat = message.chat
        chat_id, chat_type = _id_of_chat(chat), chat.type
    else:  # the message is too old to be shown; a private chat's id is the user's id
        chat_id, chat_type = str(query.from_user.id), ChatType.PRIVATE
    if chat_type != ChatType.PRIVATE:
        return _ignored(update_id, f"button press in a {chat_type} chat", chat_id)
    data = _optional_text(query.data, "callback_query.data")
    if data is None:
        return _ignored(update_id, "button press without callback data", chat_id)
    step_id, value = decode_callback_data(data)
    hint = language_hint(_optional_text(query.from_user.language_code, "from.language_code"))
    message_id: int | None = None
    message_text = ""
    label: str | None = None
    if isinstance(message, Message):
        message_id = message.message_id
        message_text = _optional_text(message.text, "callback_query.message.text") or ""
        markup = message.reply_markup
        for row in markup.inline_keyboard if markup else ():
            for button in row:
                if button.callback_data == query.data:
                    label = _optional_text(button.text, "inline_keyboard.text")
    press = CallbackPress(
        query_id=query.id,
        chat_id=chat_id,
        message_id=message_id,
        message_text=message_text,
        step_id=step_id,
        value=value,
        label=label,
    )
    return Handled(
        ChatMessage(
            update_id,
            chat_id,
            language_hint=hint,
            callback=press,
            inbound=Inbound(
                channel=CHANNEL,
                address=chat_id,
                text=value,
                # A button under a question answers it; one under a menu (the language
                # menu, help) stands for typing its value, which the core reads as text.
                kind=InboundKind.BUTTON if step_id else InboundKind.TEXT,
                provider_id=f"{update_id}:{query.id}",
                language_hint=hint,
            ),
        )
    )
