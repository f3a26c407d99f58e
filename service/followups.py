"""Follow-up dispatch: due follow-ups become started runs whose first prompt waits in the outbox.

``FollowupDispatcher.run_once`` claims a batch of due follow-ups (a lease, safe with any
number of clock processes: ``storage.followups.claim_due``), then handles them ``chunk`` at
a time, each chunk in one transaction and a few statements for all of it:

1. ``held``: the claims still ours are locked (a claim another clock took over after our
   lease ran out is left alone);
2. the facts, loaded together: the contacts (locked, with their addresses), their active
   runs (locked), when each person was last surveyed (the frequency cap) and, for
   reminders, whether their run was answered;
3. the pure rule (``bot.followup.decide``) looks at each follow-up: the contact (opted out,
   unreachable, busy in another survey), the frequency cap, expiry and the send window
   *now* (a clock that was down does not send at night: the follow-up is moved to the
   next window);
4. send: ``ConversationService.start_many_in`` starts the runs and queues their first
   prompts in the outbox (the runs in one statement, the prompts in one executemany);
   reminders queue the reminder text and the current question again on the run the
   first prompt started;
5. every follow-up of the chunk is marked sent, skipped (with its reason) or rescheduled,
   one statement per outcome, in the same transaction: a follow-up is started exactly
   once even if the clock dies at any point (its claims are taken over when the lease
   runs out and nothing committed twice).

A person with two follow-ups in one chunk has them decided one after the other (rounds:
the second sees the first one's run and survey date), as if handled one at a time. If a
chunk's transaction fails, its claims are retried one transaction each.

Sending is paced by the outbox's rate limiter, so a clock catching up after an outage
queues quickly but the citizens' phones receive messages at the provider's rate.

``palaute clock`` (``palaute/clock.py``) runs this, the outbox workers and the run-expiry
sweep.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlmodel import Session

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
from service.conversations import ConversationService, Reminder, StartRequest
from service.timesource import utcnow
from storage import followups
from storage import runs as run_store
from storage.contacts import lock_many as lock_contacts
from storage.db import transaction
from storage.errors import StorageError
from storage.followups import ClaimedFollowup

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
        chunk: int = 100,
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
        """Handle a chunk in one transaction, a few statements for all of it.

        The claims still held are locked; per round (each contact at most once per round:
        a person with two visits in the chunk is decided again after the first one's
        writes) the contacts, their active runs and the reminders' progress are loaded
        together, the pure rule decides each follow-up, the runs are started together
        (``ConversationService.start_many_in``), and at the end every follow-up is marked
        sent, skipped or rescheduled with one statement per outcome.
        """
        now = self.clock()
        report = DispatchReport()
        with transaction(self.engine) as session:
            held = followups.held(session, chunk)
            mine: list[ClaimedFollowup] = []
            for claim in chunk:
                if claim.id in held:
                    mine.append(claim)
                else:
                    report.lost += 1  # our lease ran out and another clock took it over
            firsts = [c for c in mine if c.kind == followups.FIRST and c.contact_id is not None]
            last = followups.last_surveyed_many(
                session, {(c.contact_id, c.organisation) for c in firsts if c.contact_id}
            )
            outcome = _Outcome()
            for round_ in _rounds(mine):
                self._handle_round(session, round_, now, last, report, outcome)
            # ``held`` locked these claims: each is marked exactly once, here.
            followups.mark_sent_many(session, outcome.sent, now)
            followups.mark_skipped_many(session, outcome.skipped, now)
            followups.reschedule_many(session, outcome.rescheduled, now)
            followups.schedule_reminders(session, outcome.reminders, now)
        return report

    def _handle_round(
        self,
        session: Session,
        claims: list[ClaimedFollowup],
        now: datetime,
        last_surveyed: dict[tuple[int, str], datetime],
        report: DispatchReport,
        outcome: _Outcome,
    ) -> None:
        """Decide and act on claims of different contacts (see ``_handle_together``)."""
        contact_ids = [c.contact_id for c in claims if c.contact_id is not None]
        contacts = lock_contacts(session, contact_ids)
        active_runs = run_store.active_runs(session, contact_ids, lock=True)
        progress = followups.run_progress_many(
            session,
            [c.run_id for c in claims if c.kind == followups.REMINDER and c.run_id is not None],
        )
        starts: list[tuple[ClaimedFollowup, FollowupRule, ZoneInfo, StartRequest]] = []
        reminders: list[_Reminder] = []
        for claim in claims:
            flow = self.catalogue.get(claim.flow_id)
            rule = flow.followup if flow is not None else None
            if flow is None or rule is None:
                self._skip(claim, SkipReason.FLOW_REMOVED, report, outcome)
                continue
            found = contacts.get(claim.contact_id) if claim.contact_id is not None else None
            if claim.contact_id is None or found is None:
                self._skip(claim, SkipReason.NO_CHANNEL, report, outcome)
                continue
            contact, address = found
            kind = FollowupKind(claim.kind)
            zone = self._zone(claim.timezone)
            active = active_runs.get(claim.contact_id)
            answered = False
            if kind is FollowupKind.REMINDER and claim.run_id is not None:
                run = progress.get(claim.run_id)
                answered = run.answered if run is not None else False
            busy = (
                active is not None
                and kind is FollowupKind.FIRST
                and now - active.state.last_activity_at < BUSY_WINDOW
            )
            key = (claim.contact_id, claim.organisation)
            decision = decide(
                rule,
                kind=kind,
                visit_at=claim.visit_at,
                now=now,
                zone=zone,
                opted_out=contact.opted_out,
                unreachable=contact.unreachable_at is not None,
                last_surveyed_at=last_surveyed.get(key) if kind is FollowupKind.FIRST else None,
                answered=answered,
                busy=busy,
            )
            if isinstance(decision, Skip):
                self._skip(claim, decision.reason, report, outcome)
            elif isinstance(decision, Reschedule):
                outcome.rescheduled.append((claim, decision.at))
                report.rescheduled += 1
            elif kind is FollowupKind.FIRST:
                request = StartRequest(
                    contact,
                    address,
                    active,
                    flow.id,
                    language=claim.language,
                    service_point=claim.service_point,
                )
                starts.append((claim, rule, zone, request))
                last_surveyed[key] = now  # a second visit in this chunk sees the cap
            else:
                reminders.append(_Reminder(claim, flow, rule, active))
        self._start(session, starts, now, report, outcome)
        self._remind(session, reminders, now, report, outcome)

    def _start(
        self,
        session: Session,
        starts: list[tuple[ClaimedFollowup, FollowupRule, ZoneInfo, StartRequest]],
        now: datetime,
        report: DispatchReport,
        outcome: _Outcome,
    ) -> None:
        if not starts:
            return
        results = self.conversations.start_many_in(
            session, [request for _, _, _, request in starts], now=now
        )
        for (claim, rule, zone, _), result in zip(starts, results, strict=True):
            if result.run_id is None:  # the core refused (opted out between checks)
                self._skip(claim, SkipReason.OPTED_OUT, report, outcome)
                continue
            outcome.sent.append((claim, result.run_id))
            report.sent += 1
            at = reminder_time(rule, now, claim.visit_at, zone)
            if at is not None:
                outcome.reminders.append((claim.visit_id, result.run_id, at))

    def _remind(
        self,
        session: Session,
        reminders: list[_Reminder],
        now: datetime,
        report: DispatchReport,
        outcome: _Outcome,
    ) -> None:
        """Queue the reminder text and the current question again on the open run.

        The conversation service writes the runs and the messages (it is the one writer
        of run state); a reminder whose run was closed meanwhile is skipped as expired.
        """
        due: list[tuple[_Reminder, Reminder]] = []
        for reminder in reminders:
            claim, active = reminder.claim, reminder.active
            if active is None or active.id != claim.run_id:
                # The survey was closed (expired, ended, replaced): nothing to remind about.
                self._skip(claim, SkipReason.EXPIRED, report, outcome)
                continue
            text = reminder_text(
                reminder.rule, active.state.language, reminder.flow.default_language
            )
            due.append((reminder, Reminder(active, reminder.flow, text, claim.channel or "sms")))
        self.conversations.remind_many_in(session, [r for _, r in due], now=now)
        for reminder, request in due:
            outcome.sent.append((reminder.claim, request.run.id))
            report.reminded += 1

    def _skip(
        self,
        claim: ClaimedFollowup,
        reason: SkipReason,
        report: DispatchReport,
        outcome: _Outcome,
    ) -> None:
        outcome.skipped.append((claim, reason.value))
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


@dataclass
class _Outcome:
    """What a chunk decided, written at its end with one statement per kind."""

    sent: list[tuple[ClaimedFollowup, int | None]] = field(default_factory=list)
    skipped: list[tuple[ClaimedFollowup, str]] = field(default_factory=list)
    rescheduled: list[tuple[ClaimedFollowup, datetime]] = field(default_factory=list)
    reminders: list[tuple[int, int | None, datetime]] = field(default_factory=list)


@dataclass(frozen=True)
class _Reminder:
    claim: ClaimedFollowup
    flow: Flow
    rule: FollowupRule
    active: run_store.StoredRun | None


def _rounds(claims: list[ClaimedFollowup]) -> list[list[ClaimedFollowup]]:
    """Split claims, in order, so that no contact appears twice in one round.

    Nearly always one round. A person with several visits in the chunk gets one per
    round: the next is decided after the writes of the previous one, as one at a time.
    """
    rounds: list[list[ClaimedFollowup]] = []
    seen: list[set[int]] = []
    for claim in claims:
        if claim.contact_id is None:
            index = 0
        else:
            # After the last round this contact is in (its order is kept).
            index = 0
            for number in range(len(seen) - 1, -1, -1):
                if claim.contact_id in seen[number]:
                    index = number + 1
                    break
        while len(rounds) <= index:
            rounds.append([])
            seen.append(set())
        rounds[index].append(claim)
        if claim.contact_id is not None:
            seen[index].add(claim.contact_id)
    return rounds
