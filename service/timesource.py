"""The one place that reads the real clock.

Everything else takes ``now`` as an argument. The web app reads the time through
``palaute.web.now()``, which tests override with ``create_app({"CLOCK": callable})``.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)
