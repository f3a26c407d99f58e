"""The clock: due follow-ups become started runs whose first prompt waits in the outbox.

``FollowupDispatcher.run_once`` claims a batch of due follow-ups (a lease, safe with any
number of clock processes: ``storage.followups.claim_due``), then handles each one in its
own transaction:

1. ``hold``: the claim is still ours (else another clock took over: do nothing);
2. the pure rule (``bot.followup.decide``) looks at the contact (opted out, unreachable,
   busy in another survey), the frequency cap, expiry and the send window *now* (a clock
   that was down does not send at night: the follow-up is moved to the next window);
3. send: ``ConversationService.start_in`` starts the run and queues the first prompt in the
   outbox, and the follow-up is marked ``sent`` — in the same transaction, so a follow-up
   is started exactly once even if the clock dies at any point (its claims are taken over
   when the lease runs out and nothing committed twice). Reminders queue the reminder text
   and the current question again on the run the first prompt started.

Sending is paced by the outbox's rate limiter, so a clock catching up after an outage
queues quickly but the citizens' phones receive messages at the provider's rate.

``palaute clock`` runs this, the outbox worker and the run-expiry sweep on an APScheduler
``BlockingScheduler`` (one interval job each; coalesced, never overlapping themselves).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlmodel import Session

from bot import engine as flow_engine
from bot.conversation import FlowCatalogue
from bot.flow import Flow, FollowupRule
from bot.followup import (
    FollowupKind,
    Reschedule,
    Skip,
    SkipReason,
    decide,
    reminder_text,
    reminder_time,
)
from bot.messages import Outgoing, OutgoingKind
from palaute.clock_time import utcnow
from palaute.conversations import ConversationService
from storage import followups
from storage import messages as message_log
from storage import runs as run_store
from storage.db import transaction
from storage.errors import StorageError
from storage.followups import ClaimedFollowup
from storage.messages import NewOutgoing
from storage.shapes import MessageStatus

if TYPE_CHECKING:
    from palaute.services import Services

log = logging.getLogger(__name__)

# A contact who wrote to another survey this recently is "busy": not interrupted.
BUSY_WINDOW = timedelta(minutes=15)


def default_worker_id() -> str:
    return f"clock:{socket.gethostname()}:{os.getpid()}:{random.randrange(16**6):06x}"


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    reminded: int = 0
    rescheduled: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    lost: int = 0  # claims another clock took over (our lease ran out)
    errors: list[str] = field(default_factory=list)

    def add(self, other: DispatchReport) -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.reminded += other.reminded
        self.rescheduled += other.rescheduled
        self.lost += other.lost
        for reason, n in other.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + n
        self.errors.extend(other.errors)

    def __str__(self) -> str:
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        return (
            f"claimed {self.claimed}, sent {self.sent}, reminded {self.reminded}, "
            f"rescheduled {self.rescheduled}, skipped: {skipped}, lost {self.lost}"
        )


class FollowupDispatcher:
    """Claims due follow-ups and starts their runs. Many may run at once (processes)."""

    def __init__(
        self,
        engine: Engine,
        conversations: ConversationService,
        catalogue: FlowCatalogue | None = None,
        *,
        worker_id: str | None = None,
        lease: timedelta = timedelta(minutes=2),
        clock: Callable[[], datetime] = utcnow,
        chunk: int = 50,
        # Test hook: called after each chunk is committed (crash simulations).
        after_chunk: Callable[[list[ClaimedFollowup]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.conversations = conversations
        self._catalogue = catalogue
        self.worker_id = worker_id or default_worker_id()
        self.lease = lease
        self.clock = clock
        self.chunk = max(1, chunk)
        self.after_chunk = after_chunk
        self.stopping = threading.Event()
        self._zones: dict[str, ZoneInfo] = {}

    @property
    def catalogue(self) -> FlowCatalogue:
        return self._catalogue if self._catalogue is not None else self.conversations.catalogue

    def run_once(self, limit: int = 200) -> DispatchReport:
        """Claim one batch of due follow-ups and handle them, ``chunk`` per transaction."""
        report = DispatchReport()
        with transaction(self.engine) as session:
            claims = followups.claim_due(session, self.clock(), limit, self.worker_id, self.lease)
        report.claimed = len(claims)
        for start in range(0, len(claims), self.chunk):
            if self.stopping.is_set():
                self._release(claims[start:])
                break
            chunk = claims[start : start + self.chunk]
            try:
                report.add(self._handle_chunk(chunk))
            except StorageError as error:
                # Nothing of this chunk was written; the leases run out and it comes back.
                log.error("follow-ups %s..: storage error %s", chunk[0].id, error)
                report.errors.append(f"follow-ups from {chunk[0].id}: {error}")
            if self.after_chunk is not None:
                self.after_chunk(chunk)
        return report

    def run_until_idle(
        self, limit: int = 200, max_batches: int = 10_000, budget: float | None = None
    ) -> DispatchReport:
        """Handle batches until nothing is due, ``max_batches`` or ``budget`` seconds."""
        total = DispatchReport()
        started = time.monotonic()
        for _ in range(max_batches):
            report = self.run_once(limit)
            total.add(report)
            if report.claimed < limit or self.stopping.is_set():
                break
            if budget is not None and time.monotonic() - started > budget:
                break
        return total

    # --- one follow-up -------------------------------------------------------------------

    def _handle_chunk(self, chunk: list[ClaimedFollowup]) -> DispatchReport:
        """Handle claims in one transaction; if it fails, each claim in its own.

        The fast path writes a whole chunk with one commit. A database error rolls all of
        it back (nothing half-written); the claims are then retried one transaction each,
        so one bad row cannot hold up the others (it stays claimed until its lease ends).
        """
        try:
            return self._handle_together(chunk)
        except (StorageError, sa_exc.DBAPIError) as error:
            if len(chunk) == 1:
                raise
            log.warning("follow-ups %s..: %s; retrying one by one", chunk[0].id, error)
        report = DispatchReport()
        for claim in chunk:
            try:
                report.add(self._handle_together([claim]))
            except (StorageError, sa_exc.DBAPIError) as error:
                log.error("follow-up %s: %s", claim.id, error)
                report.errors.append(f"follow-up {claim.id}: {error}")
        return report

    def _handle_together(self, chunk: list[ClaimedFollowup]) -> DispatchReport:
        now = self.clock()
        report = DispatchReport()
        with transaction(self.engine) as session:
            held = followups.held(session, chunk)
            firsts = [c for c in chunk if c.kind == followups.FIRST and c.contact_id is not None]
            last = followups.last_surveyed_many(
                session, {(c.contact_id, c.organisation) for c in firsts if c.contact_id}
            )
            started: list[tuple[ClaimedFollowup, int | None]] = []
            for claim in chunk:
                if claim.id not in held:
                    report.lost += 1  # our lease ran out and another clock took it over
                    continue
                self._handle(session, claim, now, last, report, started)
            # The runs just started, marked sent together (``held`` locked these claims).
            followups.mark_sent_many(session, started, now)
        return report

    def _handle(
        self,
        session: Session,
        claim: ClaimedFollowup,
        now: datetime,
        last_surveyed: dict[tuple[int, str], datetime],
        report: DispatchReport,
        started: list[tuple[ClaimedFollowup, int | None]],
    ) -> None:
        flow = self.catalogue.get(claim.flow_id)
        rule = flow.followup if flow is not None else None
        if flow is None or rule is None:
            self._skip(session, claim, SkipReason.FLOW_REMOVED, now, report)
            return
        if claim.contact_id is None:
            self._skip(session, claim, SkipReason.NO_CHANNEL, now, report)
            return
        contact = self.conversations.contacts.lock(session, claim.contact_id)
        if contact is None:
            self._skip(session, claim, SkipReason.NO_CHANNEL, now, report)
            return
        kind = FollowupKind(claim.kind)
        zone = self._zone(claim.timezone)
        active = run_store.active_run(session, claim.contact_id, lock=True)
        progress = (
            followups.run_progress(session, claim.run_id)
            if kind is FollowupKind.REMINDER and claim.run_id is not None
            else None
        )
        busy = (
            active is not None
            and kind is FollowupKind.FIRST
            and now - active.state.last_activity_at < BUSY_WINDOW
        )
        key = (claim.contact_id, claim.organisation)
        last = last_surveyed.get(key) if kind is FollowupKind.FIRST else None
        decision = decide(
            rule,
            kind=kind,
            visit_at=claim.visit_at,
            now=now,
            zone=zone,
            opted_out=contact.opted_out,
            unreachable=contact.unreachable_at is not None,
            last_surveyed_at=last,
            answered=progress.answered if progress is not None else False,
            busy=busy,
        )
        if isinstance(decision, Skip):
            self._skip(session, claim, decision.reason, now, report)
            return
        if isinstance(decision, Reschedule):
            followups.reschedule(session, claim, decision.at, now)
            report.rescheduled += 1
            return
        if kind is FollowupKind.FIRST:
            self._start(session, claim, flow, rule, zone, now, report, started)
            last_surveyed[key] = now  # a second visit in this chunk sees the cap
        else:
            self._remind(session, claim, flow, rule, active, now, report)

    def _start(
        self,
        session: Session,
        claim: ClaimedFollowup,
        flow: Flow,
        rule: FollowupRule,
        zone: ZoneInfo,
        now: datetime,
        report: DispatchReport,
        started: list[tuple[ClaimedFollowup, int | None]],
    ) -> None:
        assert claim.contact_id is not None
        result = self.conversations.start_in(
            session,
            claim.contact_id,
            flow.id,
            now=now,
            language=claim.language,
            service_point=claim.service_point,
        )
        if result.run_id is None:  # the core refused (opted out between checks)
            self._skip(session, claim, SkipReason.OPTED_OUT, now, report)
            return
        started.append((claim, result.run_id))  # marked sent with the chunk
        report.sent += 1
        at = reminder_time(rule, now, claim.visit_at, zone)
        if at is not None:
            followups.schedule_reminder(session, claim.visit_id, result.run_id, at, now)

    def _remind(
        self,
        session: Session,
        claim: ClaimedFollowup,
        flow: Flow,
        rule: FollowupRule,
        active: run_store.StoredRun | None,
        now: datetime,
        report: DispatchReport,
    ) -> None:
        if active is None or active.id != claim.run_id:
            # The survey was closed (expired, ended, replaced): nothing to remind about.
            self._skip(session, claim, SkipReason.EXPIRED, now, report)
            return
        state = active.state
        language = state.language
        texts: list[Outgoing] = [
            Outgoing(
                text=reminder_text(rule, language, flow.default_language),
                language=language,
                kind=OutgoingKind.INFO,
            )
        ]
        if flow.version == state.flow_version:
            texts.extend(flow_engine.reask(flow, state).messages)
        # Give the citizen the flow's usual time to answer from now on.
        run_store.update_run(
            session, active.id, state.with_(expires_at=now + flow.expires_after), now
        )
        message_log.insert_outgoing(
            session,
            contact_id=active.contact_id,
            channel=claim.channel or "sms",
            run_id=active.id,
            reply_to=None,
            items=[NewOutgoing(m, MessageStatus.QUEUED, now) for m in texts],
            now=now,
        )
        followups.mark_sent(session, claim, active.id, now)
        report.reminded += 1

    def _skip(
        self,
        session: Session,
        claim: ClaimedFollowup,
        reason: SkipReason,
        now: datetime,
        report: DispatchReport,
    ) -> None:
        followups.mark_skipped(session, claim, reason.value, now)
        report.skipped[reason.value] = report.skipped.get(reason.value, 0) + 1

    def _release(self, claims: list[ClaimedFollowup]) -> None:
        try:
            with transaction(self.engine) as session:
                followups.release(session, claims, self.clock())
        except StorageError as error:  # their leases run out instead
            log.warning("could not release %d claims on shutdown: %s", len(claims), error)

    def _zone(self, name: str) -> ZoneInfo:
        if name not in self._zones:
            self._zones[name] = ZoneInfo(name)
        return self._zones[name]


# --- palaute clock ---------------------------------------------------------------------------


@dataclass
class ClockJobs:
    """The callables the scheduler runs, built from the app's services."""

    services: Services
    dispatcher: FollowupDispatcher
    outbox_ticks: list[Callable[[], Any]] = field(default_factory=list)

    def followups(self) -> None:
        settings = self.services.settings
        try:
            report = self.dispatcher.run_until_idle(
                settings.clock_batch_size, budget=max(1.0, settings.clock_interval_seconds * 6)
            )
        except StorageError as error:
            log.error("follow-ups: %s (will retry next tick)", error)
            return
        if report.claimed:
            log.info("follow-ups: %s", report)

    def outbox(self) -> None:
        for index in range(len(self.outbox_ticks)):
            self.outbox_tick(index)

    def outbox_tick(self, index: int) -> None:
        try:
            self.outbox_ticks[index]()
        except StorageError as error:
            log.error("outbox: %s (will retry next tick)", error)

    def expire_runs(self) -> None:
        try:
            expired = self.services.conversations.expire_due(self.dispatcher.clock())
        except StorageError as error:
            log.error("run expiry: %s (will retry next tick)", error)
            return
        if expired:
            log.info("expired %d unanswered runs", expired)


def build_jobs(services: Services, *, worker_id: str | None = None) -> ClockJobs:
    settings = services.settings
    dispatcher = FollowupDispatcher(
        services.db,
        services.conversations,
        services.catalogue,
        worker_id=worker_id,
        lease=timedelta(seconds=settings.clock_lease_seconds),
    )
    jobs = ClockJobs(services, dispatcher)
    jobs.outbox_ticks.extend(_outbox_ticks(services))
    return jobs


def _outbox_ticks(services: Services) -> list[Callable[[], Any]]:
    """ "Send what is due" callables: ``CLOCK_OUTBOX_WORKERS`` per configured channel.

    Several senders per channel overlap database and provider round trips; they share the
    outbox safely (leased claims) and the sender's rate limit (kept in the database).
    """
    ticks: list[Callable[[], Any]] = []
    copies = max(1, services.settings.clock_outbox_workers)
    limit = services.settings.clock_batch_size
    budget = max(1.0, services.settings.clock_interval_seconds * 6)
    for module_name, builder in (
        ("palaute.outbox", "build_sms_outbox"),
        ("palaute.telegram_outbox", "build_telegram_outbox"),
    ):
        try:
            module = __import__(module_name, fromlist=[builder])
        except ImportError:  # pragma: no cover - a channel worker not installed
            continue
        for _ in range(copies):
            worker = getattr(module, builder)(services)
            if worker is None:
                break

            def tick(worker: Any = worker) -> None:
                started = time.monotonic()
                while time.monotonic() - started < budget:
                    report = worker.run_once(limit)
                    if report.claimed:
                        log.info("%s outbox: %s", type(worker).__name__, report)
                    if report.claimed == 0:
                        break

            ticks.append(tick)
    return ticks


def run_clock(services: Services, *, worker_id: str | None = None) -> None:
    """Block running the jobs until SIGINT/SIGTERM; claims in hand are given back."""
    from apscheduler.schedulers.blocking import BlockingScheduler  # type: ignore[import-untyped]

    settings = services.settings
    jobs = build_jobs(services, worker_id=worker_id)
    scheduler = BlockingScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    )
    every = settings.clock_interval_seconds
    scheduler.add_job(
        jobs.followups, "interval", seconds=every, id="followups", next_run_time=utcnow()
    )
    for index in range(len(jobs.outbox_ticks)):
        scheduler.add_job(
            jobs.outbox_tick,
            "interval",
            args=[index],
            seconds=every,
            id=f"outbox-{index}",
            next_run_time=utcnow(),
        )
    # A job still busy when its next run comes is the normal case here (it loops until
    # idle); APScheduler would log a warning for each skipped run.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    scheduler.add_job(jobs.expire_runs, "interval", seconds=max(every, 60.0), id="expire_runs")

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping after the current follow-up", signum)
        jobs.dispatcher.stopping.set()
        raise SystemExit(0)  # leaves scheduler.start() in the main thread

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "clock %s: every %.1fs, batches of %d, lease %.0fs",
        jobs.dispatcher.worker_id,
        every,
        settings.clock_batch_size,
        settings.clock_lease_seconds,
    )
    try:
        scheduler.start()
    except SystemExit:
        pass
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)  # running jobs see `stopping` and give claims back
