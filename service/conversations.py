"""The conversation service: one citizen message in, stored state and replies out.

``handle`` runs ONE database transaction per inbound message:

1. find or create the contact and lock it (PostgreSQL ``SELECT ... FOR UPDATE``; SQLite's
   ``BEGIN IMMEDIATE`` serialises writers), so two messages from one person are handled
   one after the other, in order;
2. a provider id seen before (a redelivered webhook) returns the replies stored the first
   time and records nothing again;
3. the inbound message, the active run and the flow version it is pinned to are loaded,
   the pure core (``bot.conversation.converse``) decides the turn;
4. the turn is stored: contact changes, opt event, runs, answers, and the replies (the
   first ``inline_limit`` as ``inline`` for the webhook response, the rest ``queued`` in
   the outbox for the channel workers).

If anything fails nothing is half-written: the transaction rolls back and the caller gets
a ``storage.errors.StorageError`` whose ``retryable`` says whether to try again (webhooks
answer 503 so the provider redelivers).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Engine, event
from sqlmodel import Session

from bot import engine as flow_engine
from bot.conversation import Contact, FlowCatalogue, Turn, converse, start_run
from bot.flow import Flow
from bot.flow_loader import load_flow_text
from bot.flow_problems import FlowError
from bot.language import LanguageDetector, RememberingDetector, language_for_phone
from bot.messages import Inbound, InboundKind, Outgoing, OutgoingKind
from bot.run import RunState, RunStatus
from storage import messages as message_log
from storage import runs as run_store
from storage.contacts import ContactStore
from storage.db import read_only, transaction
from storage.errors import RetryableStorageError, StorageError
from storage.messages import NewOutgoing
from storage.runs import StoredAnswer, StoredRun
from storage.shapes import Direction, LoggedMessage, MessageStatus, StoredContact

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandleResult:
    replies: tuple[Outgoing, ...]  # the replies to answer inline (the first `inline_limit`)
    duplicate: bool  # provider_id seen before: the stored replies again, nothing recorded twice
    queued: int = 0  # further replies left in the outbox for the channel worker
    events: tuple[str, ...] = ()  # what the core reported ("started", "completed" ...)
    contact_id: int | None = None
    run_id: int | None = None  # the run this turn touched (new, continued or closed)


@dataclass(frozen=True)
class RunSummary:
    id: int
    flow_id: str
    flow_version: str
    status: RunStatus
    language: str
    current_step: str | None
    service_point: str | None
    started_at: datetime
    expires_at: datetime
    answers: dict[str, int | str | None]


@dataclass(frozen=True)
class Transcript:
    """A contact's message log and latest run (simulator page, ``palaute chat``)."""

    contact: StoredContact | None
    messages: tuple[LoggedMessage, ...]
    run: RunSummary | None  # the most recent run (active or closed)
    answers: tuple[StoredAnswer, ...]  # the answers of that run


class ConversationService:
    def __init__(
        self,
        engine: Engine,
        catalogue: FlowCatalogue,
        *,
        address_key_secret: str,
        detector: LanguageDetector | None = None,
        organisation: str = "",
        organisation_contact: str = "",
        retries: int = 2,
    ) -> None:
        self.engine = engine
        self._reader = read_only(engine)
        self.contacts = ContactStore(address_key_secret)
        self.detector = detector
        self.organisation = organisation
        self.organisation_contact = organisation_contact
        self.retries = retries
        self._lock = threading.Lock()
        self._pinned: dict[tuple[str, str], Flow | None] = {}  # loaded old versions
        self._sources: dict[tuple[str, str], str] = {}
        # Flow versions whose YAML text is committed in flow_versions: not looked up again.
        self._remembered: set[tuple[str, str]] = set()
        self.catalogue = catalogue
        self.use_catalogue(catalogue)

    def use_catalogue(self, catalogue: FlowCatalogue) -> None:
        """Switch to a reloaded catalogue. Runs in progress stay on their own versions.

        The YAML text of each flow comes from the catalogue (exactly what was loaded, so
        an edit to the file after loading cannot be mistaken for this version).
        """
        for flow in catalogue.all():
            text = catalogue.text_of(flow)
            if text is not None:
                with self._lock:
                    self._sources[(flow.id, flow.version)] = text
        self.catalogue = catalogue
        self._language_sets = sorted({tuple(flow.languages) for flow in catalogue.all()})

    # --- public API --------------------------------------------------------------------

    def handle(
        self, inbound: Inbound, now: datetime, *, inline_limit: int | None = None
    ) -> HandleResult:
        """Handle one citizen message (see the module docstring)."""
        result = self.handle_guarded(inbound, now, None, inline_limit=inline_limit)
        if result is None:  # pragma: no cover - only a guard refuses a message
            raise RuntimeError("a message without a guard was refused")
        return result

    def handle_guarded(
        self,
        inbound: Inbound,
        now: datetime,
        guard: Callable[[Session, RunState | None], bool] | None,
        *,
        inline_limit: int | None = None,
    ) -> HandleResult | None:
        """``handle``, with the caller's ``guard`` inside the same transaction.

        For a message not seen before, ``guard(session, active run state or None)`` runs
        with the contact locked, before the turn. It may write its own rows through
        ``session`` (committed with the turn, rolled back with it) and returns whether the
        message goes on to the core; if not, nothing else is recorded and None is
        returned. A redelivered message gets its stored replies; ``guard`` is not called.
        (The Telegram webhook: a press on a button of a question the run no longer waits
        on is refused, and a press's Bot API calls are stored atomically with its answer.)
        """
        _require_aware(now)
        detector = self._prepared_detector(inbound)
        return self._retrying(
            lambda: self._handle_once(inbound, now, inline_limit, detector, guard)
        )

    def start(
        self,
        channel: str,
        address: str,
        flow_id: str,
        *,
        now: datetime,
        language: str | None = None,
        service_point: str | None = None,
        inline_limit: int | None = 0,
    ) -> HandleResult:
        """Start ``flow_id`` on our initiative (the simulator's Start, ``palaute chat``).

        ``language`` is an explicit choice: it wins over the contact's remembered language
        (when the flow has it); without it the remembered language applies. Any active run
        is closed. With the default ``inline_limit=0`` every prompt goes to the outbox;
        ``None`` returns them all inline (the simulator).
        """
        _require_aware(now)

        def once() -> HandleResult:
            with transaction(self.engine) as session:
                contact = self.contacts.find_or_create(session, channel, address, now)
                return self._start_locked(
                    session,
                    contact,
                    address,
                    flow_id,
                    now=now,
                    language=language,
                    service_point=service_point,
                    inline_limit=inline_limit,
                )

        return self._retrying(once)

    def expire_due(self, now: datetime, limit: int = 500) -> int:
        """Close active runs left unanswered past their expiry. Returns how many."""
        _require_aware(now)

        def once() -> int:
            with transaction(self.engine) as session:
                due = run_store.due_for_expiry(session, now, limit)
                for stored in due:
                    flow = self._flow_for(session, stored.state)
                    outcome = flow_engine.expire(flow, stored.state, now) if flow else None
                    closed = (
                        outcome.state
                        if outcome is not None
                        else stored.state.with_(
                            status=RunStatus.EXPIRED, current_step=None, attempts=0
                        )
                    )
                    run_store.update_run(session, stored.id, closed, now)
                return len(due)

        return self._retrying(once)

    def transcript(self, channel: str, address: str, *, limit: int | None = None) -> Transcript:
        """The contact's message log, oldest first, with its latest run."""
        with transaction(self._reader) as session:
            contact = self.contacts.find(session, channel, address)
            if contact is None:
                return Transcript(contact=None, messages=(), run=None, answers=())
            logged = message_log.log_of(session, contact.id, limit=limit)
            latest = run_store.latest_run(session, contact.id)
            answers = run_store.answers_of_run(session, latest.id) if latest else []
            return Transcript(
                contact=contact,
                messages=tuple(logged),
                run=_summary(latest) if latest else None,
                answers=tuple(answers),
            )

    # --- one transaction ---------------------------------------------------------------

    def _prepared_detector(self, inbound: Inbound) -> LanguageDetector:
        """A detector for this message that has already detected its text as the core
        will ask (for every language set of the loaded flows), so that work happens
        before the transaction takes its lock (SQLite: the database's write lock)."""
        detector = RememberingDetector(self.detector)
        if inbound.kind is InboundKind.TEXT and inbound.text:
            for languages in self._language_sets:
                detector.prepare(inbound.text, languages)
        return detector

    def _handle_once(
        self,
        inbound: Inbound,
        now: datetime,
        inline_limit: int | None,
        detector: LanguageDetector | None,
        guard: Callable[[Session, RunState | None], bool] | None,
    ) -> HandleResult | None:
        with transaction(self.engine) as session:
            stored_contact = self.contacts.find_or_create(
                session, inbound.channel, inbound.address, now
            )
            # With the contact locked: was this provider id stored already (a redelivery),
            # and the active run (locked too), in one statement.
            active, seen = run_store.active_run_and_seen(
                session, stored_contact.id, inbound.channel, inbound.provider_id
            )
            if seen is not None:
                replies = message_log.replies_to(session, seen, [MessageStatus.INLINE])
                return HandleResult(replies=replies, duplicate=True, contact_id=stored_contact.id)
            if guard is not None and not guard(session, active.state if active else None):
                return None
            if stored_contact.unreachable_at is not None:
                self.contacts.clear_unreachable(session, stored_contact.id, now)
            run_state, run_flow, active = self._pinned_run(session, active, now)
            contact = _core_contact(stored_contact, inbound.address)

            def lapsed() -> tuple[RunState, Flow] | None:
                latest = run_store.latest_run(session, stored_contact.id)
                flow = self._flow_for(session, latest.state) if latest is not None else None
                return (latest.state, flow) if latest is not None and flow is not None else None

            turn = converse(
                self.catalogue,
                contact,
                run_state,
                run_flow,
                inbound,
                now,
                detector=detector,
                organisation=self.organisation,
                organisation_contact=self.organisation_contact,
                lapsed=lapsed,
            )
            return self._store_turn(
                session,
                stored_contact,
                active,
                turn,
                now=now,
                inbound=inbound,
                inline_limit=inline_limit,
            )

    def _start_locked(
        self,
        session: Session,
        stored_contact: StoredContact,
        address: str,
        flow_id: str,
        *,
        now: datetime,
        language: str | None,
        service_point: str | None,
        inline_limit: int | None,
    ) -> HandleResult:
        active = run_store.active_run(session, stored_contact.id, lock=True)
        run_state, run_flow, active = self._pinned_run(session, active, now)
        turn = start_run(
            self.catalogue,
            _core_contact(stored_contact, address),
            flow_id,
            run=run_state,
            run_flow=run_flow,
            now=now,
            language=language,
            service_point=service_point,
        )
        return self._store_turn(
            session,
            stored_contact,
            active,
            turn,
            now=now,
            inbound=None,
            inline_limit=inline_limit,
        )

    def _pinned_run(
        self, session: Session, active: StoredRun | None, now: datetime
    ) -> tuple[RunState | None, Flow | None, StoredRun | None]:
        """The active run with the flow version it started on.

        A run whose version can no longer be loaded (its flow was deleted, or the stored
        source does not parse any more) is closed as ``ended`` rather than guessed at.
        """
        if active is None:
            return None, None, None
        flow = self._flow_for(session, active.state)
        if flow is not None:
            return active.state, flow, active
        log.warning(
            "run %s: flow %s version %s is not available any more; closing the run",
            active.id,
            active.state.flow_id,
            active.state.flow_version,
        )
        run_store.update_run(session, active.id, flow_engine.abandon(active.state, now), now)
        return None, None, None

    def _store_turn(
        self,
        session: Session,
        stored_contact: StoredContact,
        active: StoredRun | None,
        turn: Turn,
        *,
        now: datetime,
        inbound: Inbound | None,
        inline_limit: int | None,
    ) -> HandleResult:
        contact_id = stored_contact.id
        self._store_contact(session, stored_contact, turn, now)
        # Runs: close what the turn closed, then update or insert the turn's run (in this
        # order: the one-active-run-per-contact index must hold after every statement).
        active_done = False
        closed_ids: list[int] = []
        for closed in turn.closed:
            if active is not None and not active_done and _same_run(closed, active.state):
                run_store.update_run(session, active.id, closed, now)
                closed_ids.append(active.id)
                active_done = True
            else:  # started and closed within this turn: keep it for the record
                self._remember_version(session, closed, now)
                closed_ids.append(run_store.insert_run(session, stored_contact, closed, now))
        run_id: int | None = None
        if turn.run is not None:
            if active is not None and not active_done and _same_run(turn.run, active.state):
                run_store.update_run(session, active.id, turn.run, now)
                run_id = active.id
            else:
                if active is not None and not active_done and turn.run.status is RunStatus.ACTIVE:
                    log.warning("run %s replaced without being closed; closing it", active.id)
                    run_store.update_run(
                        session, active.id, flow_engine.abandon(active.state, now), now
                    )
                self._remember_version(session, turn.run, now)
                run_id = run_store.insert_run(session, stored_contact, turn.run, now)
        touched = run_id if run_id is not None else (closed_ids[0] if closed_ids else None)

        if turn.answers:
            answer_run = turn.run if run_id is not None else _closed_state(turn, active)
            if touched is None or answer_run is None:
                raise RuntimeError("the core recorded answers without a run")
            run_store.insert_answers(
                session,
                run_id=touched,
                contact=stored_contact,
                state=answer_run,
                answers=turn.answers,
            )

        inbound_id = (
            message_log.insert_inbound(session, contact_id, inbound, now, run_id=touched)
            if inbound is not None
            else None
        )
        items = _outgoing_items(turn.messages, inline_limit, now)
        message_log.insert_outgoing(
            session,
            contact_id=contact_id,
            channel=stored_contact.channel,
            run_id=touched,
            reply_to=inbound_id,
            items=items,
            now=now,
        )
        inline = tuple(i.message for i in items if i.status is MessageStatus.INLINE)
        return HandleResult(
            replies=inline,
            duplicate=False,
            queued=len(items) - len(inline),
            events=turn.events,
            contact_id=contact_id,
            run_id=touched,
        )

    def _store_contact(
        self, session: Session, stored: StoredContact, turn: Turn, now: datetime
    ) -> None:
        updated = turn.contact
        if turn.opt_event is not None:
            self.contacts.record_opt(
                session,
                stored.id,
                action=turn.opt_event.action,
                via=turn.opt_event.via,
                keyword=turn.opt_event.keyword,
                now=now,
            )
        elif updated.opted_out != stored.opted_out:
            self.contacts.record_opt(
                session,
                stored.id,
                action="out" if updated.opted_out else "in",
                via="core",
                keyword="",
                now=now,
            )
        if updated.language != stored.language:
            self.contacts.update_language(session, stored.id, updated.language, now)

    # --- flow versions -----------------------------------------------------------------

    def _remember_version(self, session: Session, state: RunState, now: datetime) -> None:
        key = (state.flow_id, state.flow_version)
        if key in self._remembered:
            return
        source = ""
        flow = self.catalogue.get(state.flow_id)
        if flow is not None and flow.version == state.flow_version:
            source = self._source_of(flow) or ""
        else:
            source = self._sources.get((state.flow_id, state.flow_version), "")
        if not source:
            log.warning(
                "flow %s version %s: its YAML text is not available; a run on it ends if "
                "the flow changes before it completes",
                state.flow_id,
                state.flow_version,
            )
        run_store.remember_flow_version(session, state.flow_id, state.flow_version, source, now)
        if source:
            # Known for good once this transaction commits (rows there are never deleted).
            event.listen(session, "after_commit", lambda _s: self._remembered.add(key), once=True)

    def _source_of(self, flow: Flow) -> str | None:
        """The YAML text of exactly this flow version (None for flows built in code)."""
        with self._lock:
            return self._sources.get((flow.id, flow.version))

    def _flow_for(self, session: Session, state: RunState) -> Flow | None:
        """The flow version a run is pinned to: the current one, or its stored source."""
        current = self.catalogue.get(state.flow_id)
        if current is not None and current.version == state.flow_version:
            return current
        key = (state.flow_id, state.flow_version)
        with self._lock:
            if key in self._pinned:
                return self._pinned[key]
        source = run_store.flow_version_source(session, state.flow_id, state.flow_version)
        flow: Flow | None = None
        if source:
            try:
                flow = load_flow_text(source, source=f"<{state.flow_id}@{state.flow_version}>")
            except FlowError as error:
                log.warning(
                    "stored flow %s version %s no longer loads: %s",
                    state.flow_id,
                    state.flow_version,
                    error,
                )
            if flow is not None and flow.version != state.flow_version:
                flow = replace(flow, version=state.flow_version)
        with self._lock:
            self._pinned[key] = flow
        return flow

    # --- retries -----------------------------------------------------------------------

    def _retrying[T](self, attempt: Callable[[], T]) -> T:
        for tries_left in range(self.retries, -1, -1):
            try:
                return attempt()
            except RetryableStorageError:
                self._remembered.clear()  # look again: trust nothing cached
                if tries_left == 0:
                    raise
                log.info("retrying a conversation transaction after a transient error")
        raise AssertionError("unreachable")  # pragma: no cover

    # --- many starts in one transaction (the clock's follow-ups) ------------------------

    def start_many_in(
        self,
        session: Session,
        starts: Sequence[StartRequest],
        *,
        now: datetime,
        inline_limit: int | None = 0,
    ) -> list[HandleResult]:
        """``start`` for many contacts at once, inside the caller's transaction.

        For callers that must start runs atomically with their own bookkeeping (the clock
        marks each follow-up sent in the same transaction). The caller has locked each
        contact and its active run in this transaction (``storage.contacts.lock_many``,
        ``storage.runs.active_runs(lock=True)``) and passes them in; each contact at most
        once. The core decides every start exactly as in ``start``. The usual case (no run
        to close, nothing but a new run and its prompts) is written together: the runs in
        one statement, the prompts in one executemany. Any other turn is stored on its
        own, as ``start`` stores it. Results are in the order of ``starts``. Nothing is
        committed here and errors are not retried: the caller owns the transaction.
        """
        _require_aware(now)
        if len({request.contact.id for request in starts}) != len(starts):
            raise ValueError("start_many_in: each contact at most once per call")
        results: list[HandleResult | None] = [None] * len(starts)
        plain: list[tuple[int, StartRequest, Turn, RunState]] = []
        for index, request in enumerate(starts):
            run_state, run_flow, active = self._pinned_run(session, request.active, now)
            turn = start_run(
                self.catalogue,
                _core_contact(request.contact, request.address),
                request.flow_id,
                run=run_state,
                run_flow=run_flow,
                now=now,
                visit_language=request.language,
                service_point=request.service_point,
            )
            if (
                active is None
                and turn.run is not None
                and not turn.closed
                and not turn.answers
                and turn.opt_event is None
            ):
                plain.append((index, request, turn, turn.run))
                continue
            results[index] = self._store_turn(
                session,
                request.contact,
                active,
                turn,
                now=now,
                inbound=None,
                inline_limit=inline_limit,
            )
        versions: set[tuple[str, str]] = set()
        for _, request, turn, run in plain:
            self._store_contact(session, request.contact, turn, now)
            if (run.flow_id, run.flow_version) not in versions:
                versions.add((run.flow_id, run.flow_version))
                self._remember_version(session, run, now)
        run_ids = run_store.insert_runs(
            session, [(request.contact, run) for _, request, _, run in plain], now
        )
        batches: list[message_log.OutgoingBatch] = []
        for (index, request, turn, _), run_id in zip(plain, run_ids, strict=True):
            items = _outgoing_items(turn.messages, inline_limit, now)
            contact = request.contact
            batches.append(message_log.OutgoingBatch(contact.id, contact.channel, run_id, items))
            inline = tuple(i.message for i in items if i.status is MessageStatus.INLINE)
            results[index] = HandleResult(
                replies=inline,
                duplicate=False,
                queued=len(items) - len(inline),
                events=turn.events,
                contact_id=request.contact.id,
                run_id=run_id,
            )
        message_log.insert_outgoing_many(session, batches, now=now)
        return [result for result in results if result is not None]

    def remind_many_in(
        self, session: Session, reminders: Sequence[Reminder], *, now: datetime
    ) -> None:
        """Queue each reminder's text and its run's current question again, inside the
        caller's transaction (the clock marks the follow-ups sent in the same one).

        The run gets the flow's usual time to answer from now on. The question is asked
        again only when the run is still on the flow version given (else just the text).
        """
        _require_aware(now)
        updates: list[tuple[int, RunState]] = []
        batches: list[message_log.OutgoingBatch] = []
        for reminder in reminders:
            run, flow = reminder.run, reminder.flow
            state = run.state
            texts: list[Outgoing] = [
                Outgoing(text=reminder.text, language=state.language, kind=OutgoingKind.INFO)
            ]
            if flow.version == state.flow_version:
                texts.extend(flow_engine.reask(flow, state).messages)
            updates.append((run.id, state.with_(expires_at=now + flow.expires_after)))
            batches.append(
                message_log.OutgoingBatch(
                    contact_id=run.contact_id,
                    channel=reminder.channel,
                    run_id=run.id,
                    items=[NewOutgoing(m, MessageStatus.QUEUED, now) for m in texts],
                )
            )
        run_store.update_runs(session, updates, now)
        message_log.insert_outgoing_many(session, batches, now=now)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be timezone-aware, e.g. datetime.now(UTC)")


def _core_contact(stored: StoredContact, address: str) -> Contact:
    return Contact(
        channel=stored.channel,
        language=stored.language,
        opted_out=stored.opted_out,
        country_language=language_for_phone(address),
    )


def _same_run(a: RunState, b: RunState) -> bool:
    return (
        a.flow_id == b.flow_id and a.flow_version == b.flow_version and a.started_at == b.started_at
    )


def _closed_state(turn: Turn, active: StoredRun | None) -> RunState | None:
    if active is None:
        return turn.closed[0] if turn.closed else None
    for closed in turn.closed:
        if _same_run(closed, active.state):
            return closed
    return turn.closed[0] if turn.closed else None


def _outgoing_items(
    messages: Sequence[Outgoing], inline_limit: int | None, now: datetime
) -> list[NewOutgoing]:
    items: list[NewOutgoing] = []
    for index, message in enumerate(messages):
        if inline_limit is None or index < inline_limit:
            items.append(NewOutgoing(message, MessageStatus.INLINE))
        else:
            items.append(NewOutgoing(message, MessageStatus.QUEUED, next_attempt_at=now))
    return items


def _summary(stored: StoredRun) -> RunSummary:
    state = stored.state
    return RunSummary(
        id=stored.id,
        flow_id=state.flow_id,
        flow_version=state.flow_version,
        status=state.status,
        language=state.language,
        current_step=state.current_step,
        service_point=state.service_point,
        started_at=state.started_at,
        expires_at=state.expires_at,
        answers=dict(state.answers),
    )


__all__ = [
    "ConversationService",
    "Direction",
    "HandleResult",
    "RunSummary",
    "StorageError",
    "Transcript",
]


@dataclass(frozen=True)
class StartRequest:
    """One start for ``ConversationService.start_many_in``: a contact the caller locked,
    its address, its active run (locked too, or None) and what to start."""

    contact: StoredContact
    address: str
    active: StoredRun | None
    flow_id: str
    language: str | None = None  # the visit's: the contact's remembered language wins
    service_point: str | None = None


@dataclass(frozen=True)
class Reminder:
    """One reminder for ``ConversationService.remind_many_in``: the active run (locked by
    the caller), the flow it is on, the reminder text and the channel to queue it on."""

    run: StoredRun
    flow: Flow
    text: str
    channel: str
