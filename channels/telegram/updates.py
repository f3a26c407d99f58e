"""The Telegram channel: Bot API updates <-> core messages.

Like every channel module it only translates shapes; it makes no HTTP calls and keeps
no state. ``parse_update`` turns the JSON body the Bot API POSTs to the webhook into a
``ParsedUpdate`` with one of three outcomes (as in nyaruka/courier):

* ``MESSAGE``: an ``Inbound`` for the core (typed text, a pressed button, ``/start``,
  a command, or media such as a photo, sticker, voice note or location);
* ``BLOCKED``: the person blocked the bot (``my_chat_member`` -> "kicked"), so the
  contact is unreachable until they start the bot again (``UNBLOCKED``);
* ``IGNORED``: anything we deliberately do not act on (groups, channel posts, edited
  messages, service messages, other update types), with the reason.

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

The render side turns an ``Outgoing`` into ``sendMessage`` parameters with an inline
keyboard. Button ``callback_data`` is ``"<step_id>:<value>"`` (at most 64 bytes); a
press comes back as ``InboundKind.BUTTON`` with ``text=value``, plus the step it was
for so the caller can tell a stale press from a current one. Buttons of messages
without a step (the language menu) come back as TEXT, exactly as if typed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from telegram import CallbackQuery, Message, Update
from telegram.constants import ChatMemberStatus, ChatType

from bot.messages import Choice, Inbound, InboundKind, Outgoing

CHANNEL = "telegram"
MAX_TEXT_LENGTH = 4096  # Bot API limit for a message text (after entity parsing)
MAX_CALLBACK_DATA_BYTES = 64  # Bot API limit for callback_data
MAX_BUTTONS_PER_ROW = 8
CHOSEN_MARK = "✅"

# Commands a person can type besides /start (`palaute telegram set-webhook` registers
# them with descriptions); the core (bot.keywords) recognises "/stop", "/help" and
# "/language" as text, next to the SMS keywords.
COMMANDS = ("stop", "help", "language")

# The toast shown when a button of an earlier, already answered question is pressed.
ALREADY_ANSWERED: dict[str, str] = {
    "fi": "Tähän kysymykseen on jo vastattu.",
    "sv": "Den här frågan är redan besvarad.",
    "en": "This question has already been answered.",
}

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
# Deep-link payloads: A-Z, a-z, 0-9, _ and - (up to 64 characters).
_START_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class TelegramUpdateError(ValueError):
    """The webhook body is not a Bot API update. Resending it unchanged cannot help."""

    retryable = False


class UpdateOutcome(StrEnum):
    MESSAGE = "message"
    BLOCKED = "blocked"
    UNBLOCKED = "unblocked"
    IGNORED = "ignored"


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
class ParsedUpdate:
    update_id: int
    outcome: UpdateOutcome
    chat_id: str | None = None
    inbound: Inbound | None = None
    callback: CallbackPress | None = None
    language_hint: str | None = None
    reason: str = ""  # why it was ignored


# --------------------------------------------------------------------------------------
# Incoming
# --------------------------------------------------------------------------------------


def language_hint(code: str | None) -> str | None:
    """``"fi"`` from ``"fi"``, ``"en"`` from ``"en-US"``; None for a missing code."""
    if not code:
        return None
    primary = code.strip().split("-")[0].split("_")[0].lower()
    return primary if primary.isalpha() and 2 <= len(primary) <= 3 else None


def encode_callback_data(step_id: str | None, value: str) -> str | None:
    """``"<step>:<value>"`` within 64 bytes; just ``":<value>"`` if the step makes it too long.

    Returns None when even the value alone does not fit (the button is then left out and
    the person can still type the answer).
    """
    step = step_id if step_id and ":" not in step_id else ""
    data = f"{step}:{value}"
    if len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
        return data
    data = f":{value}"
    return data if len(data.encode()) <= MAX_CALLBACK_DATA_BYTES else None


def decode_callback_data(data: str) -> tuple[str | None, str]:
    """The inverse of ``encode_callback_data``: ``(step_id or None, value)``."""
    if ":" not in data:
        return None, data
    step, _, value = data.partition(":")
    return (step or None), value


def parse_update(payload: Mapping[str, Any] | None) -> ParsedUpdate:
    """Translate one webhook body. Raises ``TelegramUpdateError`` for a malformed body."""
    if not isinstance(payload, Mapping):
        raise TelegramUpdateError("body: expected a JSON object (a Bot API Update)")
    update_id = payload.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise TelegramUpdateError("update_id: missing or not an integer")
    # de_json builds the objects without checking the JSON types of their fields: a
    # field of the wrong type shows while we read it, and is the same typed error.
    try:
        update = Update.de_json(dict(payload), bot=None)
        return _translate(update_id, update, payload)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise TelegramUpdateError(f"body: not a Bot API Update ({exc})") from exc


def _translate(update_id: int, update: Update, payload: Mapping[str, Any]) -> ParsedUpdate:
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
            return ParsedUpdate(update_id, UpdateOutcome.BLOCKED, chat_id=chat_id)
        if new_status == ChatMemberStatus.MEMBER and member.old_chat_member.status in (
            ChatMemberStatus.BANNED,
            ChatMemberStatus.LEFT,
        ):
            return ParsedUpdate(update_id, UpdateOutcome.UNBLOCKED, chat_id=chat_id)
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
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{field}: not a string")
    return value


def _ignored(update_id: int, reason: str, chat_id: str | None = None) -> ParsedUpdate:
    return ParsedUpdate(update_id, UpdateOutcome.IGNORED, chat_id=chat_id, reason=reason)


def _parse_message(update_id: int, message: Message) -> ParsedUpdate:
    chat_id = _id_of_chat(message.chat)
    if message.chat.type != ChatType.PRIVATE:
        return _ignored(update_id, f"message in a {message.chat.type} chat", chat_id)
    user = message.from_user
    if user is None or user.is_bot or message.sender_chat is not None:
        return _ignored(update_id, "message not sent by a person", chat_id)
    hint = language_hint(_optional_text(user.language_code, "from.language_code"))
    text_field = _optional_text(message.text, "text")

    def inbound(text: str, kind: InboundKind, start_code: str | None = None) -> ParsedUpdate:
        return ParsedUpdate(
            update_id,
            UpdateOutcome.MESSAGE,
            chat_id=chat_id,
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

    if text_field is not None:
        text = text_field.strip()
        command = _COMMAND_RE.match(text) if text.startswith("/") else None
        if command is None:
            return inbound(text_field, InboundKind.TEXT)
        name, argument = command.group(1).lower(), (command.group(3) or "").strip()
        if name == "start":
            code = argument if _START_CODE_RE.fullmatch(argument) else None
            return inbound(text, InboundKind.START, start_code=code)
        if name not in COMMANDS:
            return inbound("/help", InboundKind.TEXT)
        return inbound(f"/{name} {argument}".strip(), InboundKind.TEXT)
    if any(getattr(message, name, None) for name in _MEDIA_FIELDS):
        return inbound(message.caption or "", InboundKind.MEDIA)
    return _ignored(update_id, "service message without text", chat_id)


def _parse_callback(update_id: int, query: CallbackQuery) -> ParsedUpdate:
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
        message_text = message.text or ""
        markup = message.reply_markup
        for row in markup.inline_keyboard if markup else ():
            for button in row:
                if button.callback_data == query.data:
                    label = button.text
    press = CallbackPress(
        query_id=query.id,
        chat_id=chat_id,
        message_id=message_id,
        message_text=message_text,
        step_id=step_id,
        value=value,
        label=label,
    )
    return ParsedUpdate(
        update_id,
        UpdateOutcome.MESSAGE,
        chat_id=chat_id,
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


# --------------------------------------------------------------------------------------
# Outgoing
# --------------------------------------------------------------------------------------


def keyboard_rows(choices: Sequence[Choice], step_id: str | None) -> list[list[dict[str, str]]]:
    """Inline-keyboard rows: short labels (numbers) side by side, longer ones one per row.

    A 1-5 scale is one row; NPS 0-10 is two rows (6 + 5); yes/no is one row of two;
    choices and smiley faces (emoji + words, which screen readers speak) get a row each.
    """
    buttons = []
    for choice in choices:
        data = encode_callback_data(step_id, choice.value)
        if data is not None:
            buttons.append({"text": choice.label, "callback_data": data})
    if not buttons:
        return []
    longest = max(len(button["text"]) for button in buttons)
    if longest <= 3:
        if len(buttons) <= MAX_BUTTONS_PER_ROW:
            per_row = len(buttons)
        else:
            per_row = math.ceil(len(buttons) / math.ceil(len(buttons) / 6))
    elif len(buttons) == 2 and longest <= 16:
        per_row = 2
    else:
        per_row = 1
    return [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]


def fit_text(text: str) -> str:
    """Cut a text to the Bot API's 4096 characters (never expected for survey prompts)."""
    return text if len(text) <= MAX_TEXT_LENGTH else text[: MAX_TEXT_LENGTH - 1] + "…"


def send_message_params(message: Outgoing, chat_id: str | int) -> dict[str, Any]:
    """``sendMessage`` parameters for one outgoing message."""
    params: dict[str, Any] = {"chat_id": _chat_id(chat_id), "text": fit_text(message.text)}
    rows = keyboard_rows(message.choices, message.step_id)
    if rows:
        params["reply_markup"] = {"inline_keyboard": rows}
    return params


def webhook_reply(method: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """A Bot API method call as the webhook response body (the Bot API runs it for us)."""
    return {"method": method, **params}


def answer_callback_params(press: CallbackPress, text: str | None = None) -> dict[str, Any]:
    """``answerCallbackQuery``: stops the button's spinner (``text``: a short toast)."""
    params: dict[str, Any] = {"callback_query_id": press.query_id}
    if text:
        params["text"] = text[:200]
    return params


def edit_chosen_params(press: CallbackPress, *, chosen: bool = True) -> dict[str, Any] | None:
    """``editMessageText``: the question with the chosen answer and no buttons left.

    With ``chosen=False`` only the buttons go (a stale press: nothing was recorded).
    None when the message can't be edited (Telegram didn't include it in the update).
    """
    if press.message_id is None or not press.message_text:
        return None
    suffix = f"\n\n{CHOSEN_MARK} {press.label or press.value}" if chosen else ""
    text = press.message_text
    if len(text) + len(suffix) > MAX_TEXT_LENGTH:
        text = text[: MAX_TEXT_LENGTH - len(suffix) - 1] + "…"
    return {
        "chat_id": _chat_id(press.chat_id),
        "message_id": press.message_id,
        "text": text + suffix,  # without reply_markup: the buttons are removed
    }


def already_answered(language: str | None) -> str:
    """ "This question has already been answered" in ``language`` (else English)."""
    return ALREADY_ANSWERED.get(language or "", ALREADY_ANSWERED["en"])


def deep_link(bot_username: str, code: str) -> str:
    """``https://t.me/<bot>?start=CODE``; the code must be a valid deep-link payload."""
    if not _START_CODE_RE.fullmatch(code):
        raise ValueError(
            f"start code {code!r}: Telegram allows only A-Z, a-z, 0-9, _ and - (1-64 characters)"
        )
    username = bot_username.lstrip("@")
    if not re.fullmatch(r"[A-Za-z0-9_]{5,32}", username):
        raise ValueError(
            f"bot username {bot_username!r}: expected the @BotFather name, e.g. palaute_bot "
            "(set TELEGRAM_BOT_USERNAME)"
        )
    return f"https://t.me/{username}?start={code}"


def _chat_id(chat_id: str | int) -> int | str:
    """Chat ids are stored as text; the Bot API takes integers (or @channelusername)."""
    if isinstance(chat_id, int):
        return chat_id
    try:
        return int(chat_id)
    except ValueError:
        return chat_id
