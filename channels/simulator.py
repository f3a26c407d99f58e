"""The browser simulator channel: JSON from the simulator page <-> core messages.

Like the provider channels it only translates shapes. An inbound payload is::

    {"text": "4", "kind": "text" | "button", "id": "client message id"}

The simulated contact's address is not in the payload: it is the random session the
server issued to the browser (``palaute.web.simulator``, an HttpOnly cookie), passed in by
the caller. ``id`` makes a resent message idempotent. ``parse_inbound`` returns
``Handled(Inbound)`` or ``Rejected`` (with the field at fault; never ``Ignored``).

Outgoing messages become
``{"text", "kind", "language", "step_id", "choices": [{"value", "label"}]}`` and the
page draws ``choices`` as buttons.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from bot.clean import clean_text
from bot.messages import Inbound, InboundKind, Outgoing
from channels.base import Handled, Rejected

CHANNEL = "simulator"
MAX_TEXT_LENGTH = 2000  # a generous cap; SMS and Telegram allow far less in one message

_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_MESSAGE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")  # session:id fits 128


class _Refused(Exception):
    """A field the simulator page sent malformed; ``parse_inbound`` turns it into ``Rejected``."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def _session(value: Any) -> str:
    """A simulated contact's address: 8-64 letters, digits, '-' or '_'."""
    if not isinstance(value, str) or not _SESSION_RE.fullmatch(value):
        raise _Refused(
            "session", "must be 8-64 letters, digits, '-' or '_' (reload the page for a new one)"
        )
    return value


def parse_inbound(payload: Mapping[str, Any] | None, session: str) -> Handled[Inbound] | Rejected:
    """Turn the JSON the simulator page posts into an ``Inbound`` from ``session`` (the
    address the server issued; any ``session`` in the payload is not trusted, so ignored).
    A malformed payload is ``Rejected`` (400) naming its ``field``."""
    try:
        return Handled(_inbound(payload, session))
    except _Refused as refused:
        return Rejected(str(refused), field=refused.field)


def _inbound(payload: Mapping[str, Any] | None, session: str) -> Inbound:
    if not isinstance(payload, Mapping):
        raise _Refused("body", "expected a JSON object")
    session = _session(session)
    text = payload.get("text", "")
    if not isinstance(text, str):
        raise _Refused("text", "must be a string")
    text = clean_text(text)  # no NULs or control characters (bot.clean)
    if len(text) > MAX_TEXT_LENGTH:
        raise _Refused("text", f"is longer than {MAX_TEXT_LENGTH} characters")
    kind_value = payload.get("kind", "text")
    if kind_value not in (InboundKind.TEXT.value, InboundKind.BUTTON.value):
        raise _Refused("kind", "must be 'text' or 'button'")
    kind = InboundKind(kind_value)
    if kind is InboundKind.BUTTON and not text:
        raise _Refused("text", "a button press must carry the option value")
    message_id = payload.get("id")
    provider_id: str | None = None
    if message_id is not None:
        if not isinstance(message_id, str) or not _MESSAGE_ID_RE.fullmatch(message_id):
            raise _Refused("id", "must be 1-63 letters, digits, '-' or '_'")
        # Provider ids are unique per channel; the session keeps two tabs apart.
        provider_id = f"{session}:{message_id}"
    return Inbound(
        channel=CHANNEL,
        address=session,
        text=text,
        kind=kind,
        provider_id=provider_id,
    )


def render(message: Outgoing) -> dict[str, Any]:
    """One outgoing message as the simulator page draws it."""
    return {
        "text": message.text,
        "kind": message.kind.value,
        "language": message.language,
        "step_id": message.step_id,
        "choices": [{"value": c.value, "label": c.label} for c in message.choices],
    }


def render_all(messages: Iterable[Outgoing]) -> list[dict[str, Any]]:
    return [render(message) for message in messages]
