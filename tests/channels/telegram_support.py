"""Shared by the Telegram sender and outbox tests: a chat, a question with a keyboard, and
a rate limiter that never waits (the ``telegram_sender`` fixture in tests/conftest.py
uses it)."""

from __future__ import annotations

from bot.messages import Choice, Outgoing
from channels.telegram.sender import RateLimiter

CHAT = "6012345678"
QUESTION = Outgoing(
    "Kuinka tyytyväinen olit?",
    "fi",
    step_id="overall",
    choices=tuple(Choice(str(i), str(i)) for i in range(1, 6)),
)


def fast_limiter() -> RateLimiter:
    return RateLimiter(per_second=10_000, chat_interval=0.0)
