"""What palaute sends to Telegram: messages with inline keyboards, button calls, deep links.

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
from typing import TYPE_CHECKING, Any

from bot.messages import Choice, Outgoing

if TYPE_CHECKING:
    from channels.telegram.updates import CallbackPress

MAX_TEXT_LENGTH = 4096  # Bot API limit for a message text (after entity parsing)
MAX_CALLBACK_DATA_BYTES = 64  # Bot API limit for callback_data
MAX_BUTTONS_PER_ROW = 8
CHOSEN_MARK = "✅"

# The toast shown when a button of an earlier, already answered question is pressed.
ALREADY_ANSWERED: dict[str, str] = {
    "fi": "Tähän kysymykseen on jo vastattu.",
    "sv": "Den här frågan är redan besvarad.",
    "en": "This question has already been answered.",
}

# Deep-link payloads: A-Z, a-z, 0-9, _ and - (up to 64 characters).
START_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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
    if not START_CODE_RE.fullmatch(code):
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
