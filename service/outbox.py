"""What every channel's outbox worker shares: the claim, the contact check, the retry
decision and the send loop. ``service.sms_outbox`` and ``service.telegram_outbox`` add
what their provider needs (SMS: rate slots and lost-send recovery; Telegram: button calls
and per-chat holds after a 429) and send through the ``channels.base.OutboxSender``
protocol.

Every outbound message is stored (``storage.messages``) before anything is sent; workers
claim due rows with a lease (``storage.outbox.claim_due``), so any number may run at once.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Self

from sqlalchemy import Engine

from channels.base import OutboxSender, SendError
from service.retry import RetryPolicy
from service.timesource import utcnow
from storage import outbox as outbox_repo
from storage.contacts import ContactStore
from storage.db import transaction
from storage.shapes import OutboxMessage, StoredContact

log = logging.getLogger(__name__)


@dataclass
class Tally:
    """What an outbox pass did: counts (the subclasses' int fields) and errors."""

    claimed: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: Self) -> None:
        for counter in fields(self):
            if counter.name != "errors":
                total = getattr(self, counter.name) + getattr(other, counter.name)
                setattr(self, counter.name, total)
        self.errors.extend(other.errors)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{random.randrange(16**6):06x}"


def not_reachable(contact: StoredContact | None) -> str | None:
    """Why nothing may be sent to this contact now (None: it may)."""
    if contact is None or contact.opted_out:
        return "opted_out"
    if contact.unreachable_at is not None:
        return "unreachable"
    return None


class Outbox[S: OutboxSender, R: Tally](ABC):
    """Sends one channel's due messages through ``sender``. Many may run at once."""

    def __init__(
        self,
        engine: Engine,
        sender: S,
        contacts: ContactStore,
        *,
        worker_id: str | None,
        policy: RetryPolicy,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.sender = sender
        self.contacts = contacts
        self.worker_id = worker_id or default_worker_id()
        self.policy = policy
        self.clock = clock
        self.rng = rng or random.Random()

    @abstractmethod
    def run_once(self, limit: int = 200) -> R:
        """Claim and send one batch of due messages."""

    def claim(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxMessage]:
        """Due messages of this worker's channel, leased to it (one per contact, in order)."""
        with transaction(self.engine) as session:
            return outbox_repo.claim_due(
                session,
                now,
                limit,
                self.worker_id,
                lease,
                contacts=self.contacts,
                channels=[self.sender.channel],
            )

    def gives_up(self, message: OutboxMessage, error: SendError) -> bool:
        """Retrying cannot help, or the message has had its tries."""
        return not error.retryable or message.attempts >= self.policy.max_attempts

    def retry_delay(self, message: OutboxMessage, error: SendError) -> timedelta:
        return self.policy.delay(message.attempts, error.retry_after, self.rng)

    def log_failure(self, message: OutboxMessage, detail: str, give_up: bool) -> None:
        log.log(
            logging.ERROR if give_up else logging.WARNING,
            "%s message %s: %s (%s)",
            self.sender.channel,
            message.id,
            detail,
            "gave up" if give_up else "will retry",
        )

    def run_until_idle(self, limit: int = 200, max_batches: int = 1000) -> R:
        """Send batches until nothing is due (tests, ``--once`` commands)."""
        total: R | None = None
        for _ in range(max_batches):
            report = self.run_once(limit)
            if total is None:
                total = report
            else:
                total.add(report)
            if report.claimed == 0:
                break
        assert total is not None
        return total

    def run_for(self, limit: int, budget: float) -> None:
        """Send batches until nothing is due or ``budget`` seconds have passed (a clock tick)."""
        started = time.monotonic()
        while time.monotonic() - started < budget:
            report = self.run_once(limit)
            if report.claimed:
                log.info("%s outbox: %s", type(self).__name__, report)
            if report.claimed == 0:
                break
