"""channels/simulator.py: the simulator page's JSON -> handled or rejected, one table."""

from __future__ import annotations

from typing import Any

import pytest

from bot.messages import InboundKind
from channels.base import Handled, Rejected
from channels.simulator import MAX_TEXT_LENGTH, parse_inbound

SESSION = "a" * 43

# name, payload, session -> (kind, text, provider_id) when handled, else the rejected field
CASES: list[tuple[str, Any, str, tuple[InboundKind, str, str | None] | str]] = [
    ("text", {"text": "4", "kind": "text", "id": "m1"}, SESSION,
     (InboundKind.TEXT, "4", f"{SESSION}:m1")),
    ("button", {"text": "4", "kind": "button", "id": "m2"}, SESSION,
     (InboundKind.BUTTON, "4", f"{SESSION}:m2")),
    ("no id, no kind", {"text": "hei"}, SESSION, (InboundKind.TEXT, "hei", None)),
    ("control characters cleaned", {"text": "a\x00b"}, SESSION, (InboundKind.TEXT, "ab", None)),
    ("payload session not trusted", {"text": "4", "session": "b" * 43}, SESSION,
     (InboundKind.TEXT, "4", None)),
    ("not an object", ["4"], SESSION, "body"),
    ("no body", None, SESSION, "body"),
    ("bad session", {"text": "4"}, "short", "session"),
    ("text not a string", {"text": 4}, SESSION, "text"),
    ("text too long", {"text": "x" * (MAX_TEXT_LENGTH + 1)}, SESSION, "text"),
    ("unknown kind", {"text": "4", "kind": "sticker"}, SESSION, "kind"),
    ("empty button", {"text": "", "kind": "button"}, SESSION, "text"),
    ("bad id", {"text": "4", "id": "a b"}, SESSION, "id"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "payload", "session", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_parse_inbound(
    name: str,
    payload: Any,
    session: str,
    expected: tuple[InboundKind, str, str | None] | str,
) -> None:
    result = parse_inbound(payload, session)
    if isinstance(expected, str):
        assert isinstance(result, Rejected), result
        assert (result.field, result.status, result.retryable) == (expected, 400, False)
        assert result.reason.startswith(f"{expected}: ")
        return
    assert isinstance(result, Handled), result
    inbound = result.value
    assert (inbound.kind, inbound.text, inbound.provider_id) == expected
    assert (inbound.channel, inbound.address) == ("simulator", session)
