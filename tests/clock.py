"""The hand-moved clock of the SMS and Telegram tests (the app and the workers read it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """A clock the tests move by hand (the app and the worker read it)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 5, 14, 9, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)
