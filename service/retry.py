"""When to try a failed send again: one back-off policy for every channel's outbox."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 8
    # Telegram's retry_after is a promise (wait exactly that); Twilio's Retry-After a floor.
    exact_retry_after: bool = False

    def delay(self, attempts: int, retry_after: float | None, rng: random.Random) -> timedelta:
        """Exponential back-off with jitter (half fixed, half random), honouring the
        provider's retry-after: exactly with ``exact_retry_after``, else as a minimum."""
        if retry_after is not None and self.exact_retry_after:
            return timedelta(seconds=retry_after)
        exponential = min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** (attempts - 1))
        jittered = exponential / 2 + rng.uniform(0, exponential / 2)
        return timedelta(seconds=max(jittered, retry_after or 0.0))
