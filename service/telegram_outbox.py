"""The Telegram outbox worker: queued Telegram messages and pending Bot API calls.

Each tick (``palaute clock`` or ``palaute telegram worker``):

1. makes the stored button calls (``storage.telegram``: ``answerCallbackQuery`` and the
   ``editMessageText`` that shows the chosen answer) - they are quick and time-sensitive;
2. claims due ``telegram`` rows of the shared outbox (``storage.outbox.claim_due``, a
   lease, safe with many workers) and sends each with ``TelegramSender`` - skipping
   contacts that opted out or blocked the bot meanwhile;
3. records the outcome: ``sent`` with ``"<chat>:<message_id>"`` as the provider id; or
   queued again at exactly ``now + retry_after`` after a 429 (other messages to that chat
   in the batch wait with it, so the order holds), or after an exponential back-off for
   network errors; or ``failed`` for permanent errors - 403 (blocked, deactivated) and
   400 "chat not found" also mark the contact unreachable, so nothing more is tried.

The sender keeps ONE asyncio loop in its own thread for its whole life (see
``channels.telegram.sender``); it is made once per process and kept by
``palaute.services.Services``.
A row reclaimed after a worker died mid-send is sent again: Telegram has no idempotency
key, and a rare duplicate question is better than a lost one (it is logged).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from channels.base import SendError
from channels.telegram.sender import TelegramSender
from service.outbox import Outbox, Tally, not_reachable
from service.retry import RetryPolicy
from service.timesource import utcnow
from storage import outbox as outbox_repo
from storage import telegram as calls_repo
from storage.contacts import ContactStore
from storage.db import transaction
from storage.errors import StorageError
from storage.messages import outgoing_from_row
from storage.shapes import OutboxMessage

log = logging.getLogger(__name__)

CALL_MAX_AGE = timedelta(minutes=10)  # Telegram refuses to answer older button presses


@dataclass
class TelegramReport(Tally):
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    calls: int = 0  # button answers and edits made

    def __str__(self) -> str:
        return (
            f"claimed {self.claimed}, sent {self.sent}, retried {self.retried}, "
            f"failed {self.failed}, skipped {self.skipped}, button calls {self.calls}"
        )


class TelegramOutbox(Outbox[TelegramSender, TelegramReport]):
    def __init__(
        self,
        engine: Engine,
        sender: TelegramSender,
        contacts: ContactStore,
        *,
        worker_id: str | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        lease: timedelta = timedelta(minutes=2),
    ) -> None:
        super().__init__(
            engine,
            sender,
            contacts,
            worker_id=worker_id,
            policy=policy or RetryPolicy(exact_retry_after=True),
            clock=clock,
            rng=rng,
        )
        self.lease = lease

    def run_once(self, limit: int = 200) -> TelegramReport:
        report = TelegramReport()
        self._make_calls(limit, report)
        claimed = self.claim(self.clock(), limit, self.lease)
        report.claimed = len(claimed)
        held: dict[str, datetime] = {}  # chat -> not before (a 429 for that chat)
        for message in claimed:
            try:
                self._deliver(message, report, held)
            except StorageError as error:
                log.error("telegram message %s: storage error %s", message.id, error)
                report.errors.append(f"message {message.id}: {error}")
        return report

    # --- button answers and edits ------------------------------------------------------

    def _make_calls(self, limit: int, report: TelegramReport) -> None:
        now = self.clock()
        with transaction(self.engine) as session:
            calls = calls_repo.claim_calls(session, now, limit, self.lease)
        for call in calls:
            retry_at: datetime | None = None
            if call.method != "answerCallbackQuery" or now - call.created_at <= CALL_MAX_AGE:
                try:
                    self.sender.call(call.method, call.params, chat=call.chat)
                    report.calls += 1
                except SendError as error:
                    if error.retryable and call.attempts < 3:
                        retry_at = self.clock() + self.policy.delay(
                            call.attempts, error.retry_after, self.rng
                        )
                    log.info("telegram %s for chat call %s: %s", call.method, call.id, error)
            with transaction(self.engine) as session:
                if retry_at is None:
                    calls_repo.drop_call(session, call.id)
                else:
                    calls_repo.retry_call(session, call.id, retry_at)

    # --- messages ----------------------------------------------------------------------

    def _deliver(
        self, message: OutboxMessage, report: TelegramReport, held: dict[str, datetime]
    ) -> None:
        now = self.clock()
        if message.address in held:
            with transaction(self.engine) as session:
                outbox_repo.mark_failed(
                    session, message.id, "429_chat_held", held[message.address], now=now
                )
            report.retried += 1
            return
        with transaction(self.engine) as session:
            reason = not_reachable(self.contacts.get(session, message.contact_id))
            if reason is not None:
                outbox_repo.mark_skipped(session, message.id, reason, now=now)
                report.skipped += 1
                return
        if message.reclaimed:
            log.warning(
                "telegram message %s: an earlier send may have reached Telegram; sending again",
                message.id,
            )
        outgoing = outgoing_from_row(message.kind, message.text, message.payload)
        try:
            result = self.sender.send_outgoing(message.address, outgoing)
        except SendError as error:
            self._failed(message, error, report, held)
            return
        with transaction(self.engine) as session:
            outbox_repo.mark_sent(session, message.id, result.provider_id, now=self.clock())
        report.sent += 1

    def _failed(
        self,
        message: OutboxMessage,
        error: SendError,
        report: TelegramReport,
        held: dict[str, datetime],
    ) -> None:
        now = self.clock()
        give_up = self.gives_up(message, error)
        with transaction(self.engine) as session:
            if give_up:
                outbox_repo.mark_failed(session, message.id, error.error_code, None, now=now)
                report.failed += 1
            else:
                retry_at = now + self.retry_delay(message, error)
                outbox_repo.mark_failed(session, message.id, error.error_code, retry_at, now=now)
                report.retried += 1
                if error.retry_after is not None:
                    held[message.address] = retry_at
            if error.contact_unreachable:
                self.contacts.mark_unreachable(
                    session, message.contact_id, f"telegram {error.code}: {error.reason}", now
                )
        self.log_failure(message, str(error), give_up)
