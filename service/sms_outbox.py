"""The SMS outbox worker: sends queued outbound SMS through Twilio, one rate slot at a time.

Every outbound message is already stored (``storage.messages``) before anything is sent.
A worker:

1. claims due ``sms`` rows (``storage.outbox.claim_due``: a lease, safe with many workers);
2. per wave (about one second of sending at the configured rate; one message at a time
   below 2/s), in one short transaction: renews the claim if an earlier wave took long
   (dropping messages another worker took over), re-checks the contacts (opted out or
   unreachable -> ``skipped``), reserves the sender's next rate slots
   (``storage.sms.reserve_slots``, shared by every worker through the database) and
   writes an open send attempt per message;
3. waits for each slot and calls Twilio (``channels.twilio.sender.TwilioSender``), on up to
   ``send_threads`` threads when slots are closer together than a request takes; a send
   whose claim would run out before it could finish is not started (queued again);
4. records the outcomes: every ``sent`` of the wave (with its MessageSid) in one
   transaction; per failure, a retry at ``now + back-off`` (exponential, jittered, never
   earlier than ``Retry-After``) or ``failed`` for permanent errors, marking the contact
   opted out (21610) or unreachable (21211/21614/30003/30005/30006).

A worker that dies between Twilio's answer and step 4 leaves the attempt open and the
row ``sending``. When the lease runs out another worker reclaims it and first asks
Twilio (Messages list) whether the message exists: if so it records that sid (attempt
``found``), otherwise it marks the old attempt ``lost`` and sends. Status callbacks
carry the message id in their URL, so they also attach a sid that was never recorded.

``palaute outbox run`` runs the loop; ``palaute clock`` runs it on its outbox ticks (both
build the worker with ``palaute.services.Services.sms_outbox``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from bot.messages import Outgoing
from channels.base import ContactEffect, SendError
from channels.twilio.sender import SendResult, TwilioSender
from service.outbox import Outbox, Tally, not_reachable
from service.retry import RetryPolicy
from service.timesource import utcnow
from storage import outbox as outbox_repo
from storage import sms as sms_repo
from storage.contacts import ContactStore
from storage.db import transaction
from storage.errors import StorageError
from storage.messages import outgoing_from_row
from storage.shapes import OutboxMessage
from storage.sms import AttemptOutcome

log = logging.getLogger(__name__)

STATUS_PATH = "/webhooks/twilio/status"

# A wave: messages checked against opt-outs, reserved and sent together (seconds of sending).
WAVE_SECONDS = 1.0
# Several sends in flight at once only when slots are closer than a request takes.
PARALLEL_BELOW = timedelta(milliseconds=50)
# Extend a claim before a wave when less than this (plus the wave's slots) is left of it.
RENEW_BELOW = timedelta(seconds=30)
# No send starts later than this before the claim ends (a request times out in 15 s).
SEND_MARGIN = timedelta(seconds=20)


@dataclass
class OutboxReport(Tally):
    claimed: int = 0
    sent: int = 0
    found: int = 0  # lost sends found at Twilio and recorded
    retried: int = 0
    failed: int = 0
    skipped: int = 0

    def __str__(self) -> str:
        return (
            f"claimed {self.claimed}, sent {self.sent}, found {self.found}, "
            f"retried {self.retried}, failed {self.failed}, skipped {self.skipped}"
        )


class SmsOutbox(Outbox[TwilioSender, OutboxReport]):
    """Sends due outbound SMS. Many of these may run at once (threads or processes)."""

    def __init__(
        self,
        engine: Engine,
        sender: TwilioSender,
        contacts: ContactStore,
        *,
        rate_per_second: float = 1.0,
        public_base_url: str | None = None,
        worker_id: str | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        send_threads: int = 4,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("SMS_RATE_PER_SECOND must be above 0 (e.g. 1 for a long code).")
        super().__init__(
            engine,
            sender,
            contacts,
            worker_id=worker_id,
            policy=policy or RetryPolicy(),
            clock=clock,
            rng=rng,
        )
        self.interval = timedelta(seconds=1.0 / rate_per_second)
        self.rate_per_second = rate_per_second
        self.public_base_url = (public_base_url or "").rstrip("/") or None
        self.sleep = sleep
        self.send_threads = max(1, send_threads)

    # --- the loop ------------------------------------------------------------------------

    def batch_size(self, limit: int) -> int:
        """Claim no more than about 30 s of sending at this rate (the lease must cover it)."""
        return max(1, min(limit, int(self.rate_per_second * 30) or 1))

    def lease(self, count: int) -> timedelta:
        return timedelta(seconds=60) + self.interval * count

    def run_once(self, limit: int = 200) -> OutboxReport:
        """Claim and send one batch of due messages.

        Messages handed out again (a worker died or timed out) go one by one through
        ``_deliver``, which first asks Twilio whether they already went out. The others
        are sent in waves of about one second of sending (``wave_size``): per wave one
        transaction re-checks the contacts, reserves the slots and opens the attempts;
        the sends run on a few threads when the rate allows several in flight; one more
        transaction records what Twilio accepted.
        """
        report = OutboxReport()
        size = self.batch_size(limit)
        claimed_at = self.clock()
        claimed = self.claim(claimed_at, size, self.lease(size))
        report.claimed = len(claimed)
        lease_end = claimed_at + self.lease(size)
        fresh = [message for message in claimed if not message.reclaimed]
        for message in claimed:
            if message.reclaimed:
                self._deliver_safely(message, report)
        wave = self.wave_size()
        for start in range(0, len(fresh), wave):
            part = fresh[start : start + wave]
            try:
                lease_end = self._deliver_wave(part, lease_end, report)
            except StorageError as error:
                # Nothing of that step was written; the lease expires and they come back.
                log.error("outbox messages %s..: storage error %s", part[0].id, error)
                report.errors.append(f"messages from {part[0].id}: {error}")
        return report

    def wave_size(self) -> int:
        """Messages checked, reserved and sent together: about one second of sending, so
        an opt-out is seen at most that long before the send (one at a time below 2/s)."""
        return max(1, int(self.rate_per_second * WAVE_SECONDS))

    def _deliver_safely(self, message: OutboxMessage, report: OutboxReport) -> None:
        try:
            self._deliver(message, report)
        except StorageError as error:
            # Nothing of that step was written; the lease expires and it comes back.
            log.error("outbox message %s: storage error %s", message.id, error)
            report.errors.append(f"message {message.id}: {error}")

    # --- one message ---------------------------------------------------------------------

    def status_callback(self, message_id: int) -> str | None:
        if self.public_base_url is None:
            return None
        return f"{self.public_base_url}{STATUS_PATH}?m={message_id}"

    def _deliver(self, message: OutboxMessage, report: OutboxReport) -> None:
        now = self.clock()
        with transaction(self.engine) as session:
            reason = not_reachable(self.contacts.get(session, message.contact_id))
            if reason is not None:
                self._skip(session, message, reason, now)
                report.skipped += 1
                return
            unfinished = sms_repo.open_attempts(session, message.id)
            slot = sms_repo.reserve_slot(session, self.sender.sender_key, now, self.interval)
            attempt = sms_repo.start_attempt(
                session, message.id, message.attempts, self.worker_id, now
            )

        if unfinished or message.reclaimed:
            since = unfinished[0].started_at if unfinished else message.created_at
            if self._recover(message, attempt, since - timedelta(minutes=1), unfinished, report):
                return

        wait = (slot - self.clock()).total_seconds()
        if wait > 0:
            self.sleep(wait)
        try:
            result = self.sender.send_outgoing(
                message.address,
                _outgoing(message),
                status_callback=self.status_callback(message.id),
            )
        except SendError as error:
            self._failed(message, attempt, error, report)
            return
        now = self.clock()
        with transaction(self.engine) as session:
            outbox_repo.mark_sent(session, message.id, result.sid, now=now)
            sms_repo.finish_attempt(
                session, attempt, AttemptOutcome.SENT, now, provider_id=result.sid
            )
        report.sent += 1

    def _deliver_wave(
        self, part: list[OutboxMessage], lease_end: datetime, report: OutboxReport
    ) -> datetime:
        """Send ``part`` (fresh claims, one per contact). Returns the claims' lease end."""
        now = self.clock()
        ids = [message.id for message in part]
        with transaction(self.engine) as session:
            if lease_end - now < RENEW_BELOW + self.interval * len(part):
                # An earlier wave took long: extend the claim, and drop any message another
                # worker took over meanwhile (it is theirs to send now).
                lease_end = now + self.lease(len(part))
                held = outbox_repo.renew_claims(session, ids, self.worker_id, lease_end, now=now)
                for message in part:
                    if message.id not in held:
                        log.warning("outbox message %s: claim taken over, not sent", message.id)
                part = [message for message in part if message.id in held]
            reasons = outbox_repo.not_reachable(session, [message.contact_id for message in part])
            for message in part:
                if message.contact_id in reasons:
                    self._skip(session, message, reasons[message.contact_id], now)
                    report.skipped += 1
            part = [message for message in part if message.contact_id not in reasons]
            unfinished = sms_repo.messages_with_open_attempts(
                session, [message.id for message in part]
            )
            fast = [message for message in part if message.id not in unfinished]
            slots = sms_repo.reserve_slots(
                session, self.sender.sender_key, now, self.interval, len(fast)
            )
            attempts = sms_repo.start_attempts(
                session, [(message.id, message.attempts) for message in fast], self.worker_id, now
            )
        for message in part:
            if message.id in unfinished:  # an earlier try may have gone out: ask Twilio
                self._deliver_safely(message, report)
        # Never start a send that could still be in flight when the claim runs out.
        deadline = lease_end - SEND_MARGIN
        jobs = list(zip(fast, slots, strict=True))

        def send(job: tuple[OutboxMessage, datetime]) -> SendResult | SendError | None:
            message, slot = job
            wait = (slot - self.clock()).total_seconds()
            if wait > 0:
                self.sleep(wait)
            if self.clock() >= deadline:
                return None
            try:
                return self.sender.send_outgoing(
                    message.address,
                    _outgoing(message),
                    status_callback=self.status_callback(message.id),
                )
            except SendError as error:
                return error

        threads = min(self.send_threads, len(jobs)) if self.interval < PARALLEL_BELOW else 1
        if threads <= 1:
            outcomes = [send(job) for job in jobs]
        else:
            with ThreadPoolExecutor(threads, thread_name_prefix="sms-send") as pool:
                outcomes = list(pool.map(send, jobs))
        sent = [
            (message, attempt, outcome.sid)
            for message, attempt, outcome in zip(fast, attempts, outcomes, strict=True)
            if isinstance(outcome, SendResult)
        ]
        if sent:
            now = self.clock()
            with transaction(self.engine) as session:
                outbox_repo.mark_sent_many(session, [(m.id, sid) for m, _, sid in sent], now=now)
                sms_repo.finish_sent_attempts(session, [(a, sid) for _, a, sid in sent], now)
            report.sent += len(sent)
        for message, attempt, outcome in zip(fast, attempts, outcomes, strict=True):
            if isinstance(outcome, SendError):
                self._failed(message, attempt, outcome, report)
            elif outcome is None:
                self._not_sent(message, attempt, report)
        return lease_end

    def _not_sent(self, message: OutboxMessage, attempt: int, report: OutboxReport) -> None:
        """The claim ran short before this message's turn: queue it again, untried."""
        now = self.clock()
        with transaction(self.engine) as session:
            outbox_repo.mark_failed(session, message.id, "claim_expiring", now, now=now)
            sms_repo.finish_attempt(
                session,
                attempt,
                AttemptOutcome.RETRY,
                now,
                detail="not sent: this worker's claim was running out",
            )
        report.retried += 1

    def _skip(self, session: Session, message: OutboxMessage, reason: str, now: datetime) -> None:
        outbox_repo.mark_skipped(session, message.id, reason, now=now)
        attempt = sms_repo.start_attempt(session, message.id, message.attempts, self.worker_id, now)
        sms_repo.finish_attempt(session, attempt, AttemptOutcome.SKIPPED, now, detail=reason)

    def _recover(
        self,
        message: OutboxMessage,
        attempt: int,
        since: datetime,
        unfinished: list[sms_repo.SendAttempt],
        report: OutboxReport,
    ) -> bool:
        """An earlier send may have reached Twilio: look for it before sending again.

        Returns True when the message was found (and recorded) or must wait for a retry.
        """
        try:
            sid = self.sender.find_sent(message.address, message.text, since)
        except SendError as error:
            self._failed(message, attempt, error, report, checking=True)
            return True
        now = self.clock()
        with transaction(self.engine) as session:
            for old in unfinished:
                outcome = AttemptOutcome.FOUND if sid else AttemptOutcome.LOST
                detail = (
                    f"found at Twilio by {self.worker_id} after the sender stopped"
                    if sid
                    else f"not at Twilio; resent by {self.worker_id}"
                )
                sms_repo.finish_attempt(
                    session, old.id, outcome, now, provider_id=sid, detail=detail
                )
            if sid is None:
                return False
            outbox_repo.mark_sent(session, message.id, sid, now=now)
            sms_repo.finish_attempt(
                session,
                attempt,
                AttemptOutcome.FOUND,
                now,
                provider_id=sid,
                detail="already accepted by Twilio; not sent again",
            )
        log.warning("outbox message %s: lost send found at Twilio as %s", message.id, sid)
        report.found += 1
        return True

    def _failed(
        self,
        message: OutboxMessage,
        attempt: int,
        error: SendError,
        report: OutboxReport,
        *,
        checking: bool = False,
    ) -> None:
        now = self.clock()
        code = error.error_code
        detail = ("while checking for a lost send: " if checking else "") + error.describe()
        give_up = self.gives_up(message, error)
        with transaction(self.engine) as session:
            if give_up:
                outbox_repo.mark_failed(session, message.id, code, None, now=now)
                report.failed += 1
            else:
                delay = self.retry_delay(message, error)
                outbox_repo.mark_failed(session, message.id, code, now + delay, now=now)
                report.retried += 1
                if error.retry_after:
                    sms_repo.push_slot(
                        session,
                        self.sender.sender_key,
                        now + timedelta(seconds=error.retry_after),
                        now,
                    )
            if error.maybe_sent and not give_up:
                # Leave the attempt open: the retry first asks Twilio whether it arrived.
                sms_repo.finish_attempt(
                    session, attempt, AttemptOutcome.STARTED, now, error_code=code, detail=detail
                )
            else:
                outcome = AttemptOutcome.FAILED if give_up else AttemptOutcome.RETRY
                sms_repo.finish_attempt(
                    session, attempt, outcome, now, error_code=code, detail=detail
                )
            apply_contact_effect(self.contacts, session, message.contact_id, error, now)
        self.log_failure(message, detail, give_up)


def apply_contact_effect(
    contacts: ContactStore,
    session: Session,
    contact_id: int,
    error: SendError | None,
    now: datetime,
    *,
    effect: ContactEffect | None = None,
    code: int | str | None = None,
) -> None:
    """What a permanent Twilio error means for the person: opted out or unreachable."""
    effect = effect or (error.contact_effect if error is not None else None)
    code = code if code is not None else (error.code if error is not None else None)
    if effect is None:
        return
    if effect is ContactEffect.OPTED_OUT:
        found = contacts.get(session, contact_id)
        if found is not None and not found.opted_out:
            contacts.record_opt(
                session,
                contact_id,
                action="out",
                via="provider",
                keyword=f"twilio error {code}",
                now=now,
            )
        return
    contacts.mark_unreachable(session, contact_id, f"{effect.value} ({code})", now)


def _outgoing(message: OutboxMessage) -> Outgoing:
    return outgoing_from_row(message.kind, message.text, message.payload)
