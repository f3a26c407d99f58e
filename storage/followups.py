"""Follow-ups: the durable schedule the clock works from (visits are in ``storage.visits``).

The database decides what is due. ``claim_due`` hands due follow-ups to one clock with
a lease (``claimed_until``); every later change (``finish``) is conditional on that
claim still being held, in the same transaction that starts the run, so a follow-up is
started at most once even when a slow clock's lease ran out and another clock took over.
A clock killed mid-batch leaves its rows ``claimed``; they become claimable again when
the lease runs out (``due_at`` of a claimed row is its lease end).

Like the other repositories, functions take the caller's session and do not commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from storage.followup_tables import FollowupRow, FollowupStatus, VisitRow
from storage.sql import dialect_name, one_of
from storage.tables import AnswerRow, FlowRunRow, table_of

_visits = table_of(VisitRow)
_followups = table_of(FollowupRow)
_runs = table_of(FlowRunRow)
_answers = table_of(AnswerRow)

FIRST = "first"
REMINDER = "reminder"
_CLAIMABLE_STATUSES = (FollowupStatus.SCHEDULED, FollowupStatus.CLAIMED)  # see CLAIMABLE


@dataclass(frozen=True)
class ClaimedFollowup:
    """A due follow-up with what the clock needs to decide and send it."""

    id: int
    kind: str
    attempts: int  # including this claim: the claim token for ``finish``
    claimed_by: str
    run_id: int | None  # reminders: the run the first prompt started
    visit_id: int
    organisation: str
    visit_at: datetime
    timezone: str
    contact_id: int | None
    channel: str | None
    language: str | None
    flow_id: str
    service_point: str | None


# --- the clock ------------------------------------------------------------------------------


def claim_due(
    session: Session, now: datetime, limit: int, worker_id: str, lease: timedelta
) -> list[ClaimedFollowup]:
    """Claim up to ``limit`` due follow-ups (oldest first) for ``worker_id`` until now+lease.

    Due: ``scheduled`` with ``due_at <= now``, or ``claimed`` whose lease ran out (a clock
    died or stalled). PostgreSQL skips rows another clock is claiming (``FOR UPDATE SKIP
    LOCKED``); on SQLite the whole UPDATE runs under the ``BEGIN IMMEDIATE`` write lock.
    """
    if limit <= 0:
        return []
    until = now + lease
    candidates = (
        sa.select(_followups.c.id)
        .where(
            # The predicate of the partial index ix_followups_claimable_due, with literal
            # values like the index: the claim reads the oldest due rows from it, in order.
            _followups.c.status.in_(
                [sa.literal_column(f"'{s.value}'") for s in _CLAIMABLE_STATUSES]
            ),
            _followups.c.due_at <= now,
        )
        .order_by(_followups.c.due_at, _followups.c.id)
        .limit(limit)
    )
    if dialect_name(session) == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    claimed = session.execute(
        sa.update(_followups)
        .where(_followups.c.id.in_(candidates.scalar_subquery()))
        .values(
            status=FollowupStatus.CLAIMED.value,
            claimed_by=worker_id,
            claimed_until=until,
            due_at=until,
            attempts=_followups.c.attempts + 1,
            updated_at=now,
        )
        .returning(_followups.c.id)
    )
    ids = sorted(int(r[0]) for r in claimed)
    if not ids:
        return []
    rows = session.execute(
        sa.select(
            _followups.c.id,
            _followups.c.kind,
            _followups.c.attempts,
            _followups.c.claimed_by,
            _followups.c.run_id,
            _followups.c.due_at,
            _visits.c.id.label("visit_id"),
            _visits.c.organisation,
            _visits.c.visit_at,
            _visits.c.timezone,
            _visits.c.contact_id,
            _visits.c.channel,
            _visits.c.language,
            _visits.c.flow_id,
            _visits.c.service_point,
        )
        .join(_visits, _visits.c.id == _followups.c.visit_id)
        .where(one_of(session, _followups.c.id, ids))
        .order_by(_followups.c.id)
    )
    return [
        ClaimedFollowup(
            id=int(r.id),
            kind=r.kind,
            attempts=int(r.attempts),
            claimed_by=r.claimed_by,
            run_id=r.run_id,
            visit_id=int(r.visit_id),
            organisation=r.organisation,
            visit_at=r.visit_at,
            timezone=r.timezone,
            contact_id=r.contact_id,
            channel=r.channel,
            language=r.language,
            flow_id=r.flow_id,
            service_point=r.service_point,
        )
        for r in rows
    ]


def mark_sent_many(
    session: Session, sent: Sequence[tuple[ClaimedFollowup, int | None]], now: datetime
) -> None:
    """Mark claims sent with the run each started, ``(claim, run id)`` pairs, in one
    statement (executemany)."""
    _finish_many(
        session,
        FollowupStatus.SENT,
        now,
        [(claim, {"b_run_id": run_id}) for claim, run_id in sent],
        run_id=sa.bindparam("b_run_id"),
        sent_at=now,
        due_at=None,
    )


def release(session: Session, claims: Sequence[ClaimedFollowup], now: datetime) -> None:
    """Give claims back untouched (clean shutdown mid-batch): due again at once."""
    reschedule_many(session, [(claim, now) for claim in claims], now)


def mark_skipped_many(
    session: Session, skipped: Sequence[tuple[ClaimedFollowup, str]], now: datetime
) -> None:
    """Mark claims skipped, ``(claim, reason)`` pairs, in one statement (executemany)."""
    _finish_many(
        session,
        FollowupStatus.SKIPPED,
        now,
        [(claim, {"b_skip_reason": reason, "b_due_at": None}) for claim, reason in skipped],
        skip_reason=sa.bindparam("b_skip_reason"),
        due_at=sa.bindparam("b_due_at"),
    )


def reschedule_many(
    session: Session, moved: Sequence[tuple[ClaimedFollowup, datetime]], now: datetime
) -> None:
    """Make claims due again at a new time, ``(claim, due at)`` pairs, in one statement
    (executemany)."""
    _finish_many(
        session,
        FollowupStatus.SCHEDULED,
        now,
        [(claim, {"b_due_at": due_at}) for claim, due_at in moved],
        due_at=sa.bindparam("b_due_at"),
    )


def _finish_many(
    session: Session,
    status: FollowupStatus,
    now: datetime,
    rows: Sequence[tuple[ClaimedFollowup, dict[str, Any]]],
    **values: Any,
) -> None:
    """Finish claims still held by their claimer (id, claimer and attempt all match): one
    UPDATE run once per claim (executemany). A claim another clock took over is left."""
    if not rows:
        return
    session.execute(
        sa.update(_followups)
        .where(
            _followups.c.id == sa.bindparam("b_id"),
            _followups.c.claimed_by == sa.bindparam("b_claimed_by"),
            _followups.c.attempts == sa.bindparam("b_attempts"),
        )
        .values(status=status.value, claimed_by=None, claimed_until=None, updated_at=now, **values),
        [
            {
                "b_id": claim.id,
                "b_claimed_by": claim.claimed_by,
                "b_attempts": claim.attempts,
                **params,
            }
            for claim, params in rows
        ],
    )


def schedule_reminders(
    session: Session, reminders: Sequence[tuple[int, int | None, datetime]], now: datetime
) -> None:
    """Schedule a reminder for each ``(visit id, run id, due at)``, in one statement; a
    visit that has its reminder already keeps it."""
    if not reminders:
        return
    insert: Any = (postgresql if dialect_name(session) == "postgresql" else sqlite).insert(
        _followups
    )
    session.execute(
        insert.values(
            [
                {
                    "visit_id": visit_id,
                    "kind": REMINDER,
                    "status": FollowupStatus.SCHEDULED.value,
                    "planned_at": due_at,
                    "due_at": due_at,
                    "run_id": run_id,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for visit_id, run_id, due_at in reminders
            ]
        ).on_conflict_do_nothing(index_elements=["visit_id", "kind"])
    )


@dataclass(frozen=True)
class RunProgress:
    status: str
    answered: bool  # completed, or at least one answer recorded
    current_step: str | None
    state: dict[str, Any]


def run_progress_many(session: Session, run_ids: Sequence[int]) -> dict[int, RunProgress]:
    """How far each run got, in two statements: run id -> progress (runs that exist)."""
    ids = sorted(set(run_ids))
    if not ids:
        return {}
    rows = session.execute(
        sa.select(_runs.c.id, _runs.c.status, _runs.c.state).where(one_of(session, _runs.c.id, ids))
    ).all()
    with_answers = {
        int(r[0])
        for r in session.execute(
            sa.select(_answers.c.run_id).where(one_of(session, _answers.c.run_id, ids)).distinct()
        )
    }
    progress: dict[int, RunProgress] = {}
    for row in rows:
        state = dict(row.state or {})
        progress[int(row.id)] = RunProgress(
            status=row.status,
            answered=row.status == "completed" or int(row.id) in with_answers,
            current_step=state.get("current_step"),
            state=state,
        )
    return progress


def held(session: Session, claims: Sequence[ClaimedFollowup]) -> set[int]:
    """Lock the claims still held as claimed (same clock, same claim); return their ids.

    Call first in the finishing transaction. A missing id: the lease ran out and another
    clock re-claimed it (or it is done) — leave it alone.
    """
    if not claims:
        return set()
    statement = sa.select(_followups.c.id, _followups.c.claimed_by, _followups.c.attempts).where(
        one_of(session, _followups.c.id, [c.id for c in claims]),
        _followups.c.status == FollowupStatus.CLAIMED.value,
    )
    if dialect_name(session) == "postgresql":
        statement = statement.with_for_update()
    current = {int(r.id): (r.claimed_by, int(r.attempts)) for r in session.execute(statement)}
    return {c.id for c in claims if current.get(c.id) == (c.claimed_by, c.attempts)}


def last_surveyed_many(
    session: Session, people: set[tuple[int, str]]
) -> dict[tuple[int, str], datetime]:
    """(contact id, organisation) -> when last sent a first follow-up, for those who were."""
    if not people:
        return {}
    contact_ids = sorted({contact_id for contact_id, _ in people})
    # From these contacts' visits to their first follow-ups (by the unique (visit, kind)
    # index). "Sent" is tested inside the aggregate, not in WHERE: a status filter would
    # invite the planner to start from every sent follow-up when its statistics are old.
    sent_at = sa.case(
        (_followups.c.status == FollowupStatus.SENT.value, _followups.c.sent_at), else_=None
    )
    rows = session.execute(
        sa.select(_visits.c.contact_id, _visits.c.organisation, sa.func.max(sent_at).label("last"))
        .select_from(_visits)
        .join(
            _followups,
            sa.and_(_followups.c.visit_id == _visits.c.id, _followups.c.kind == FIRST),
        )
        .where(one_of(session, _visits.c.contact_id, contact_ids))
        .group_by(_visits.c.contact_id, _visits.c.organisation)
    )
    return {
        (int(r.contact_id), r.organisation): r.last
        for r in rows
        if (int(r.contact_id), r.organisation) in people and r.last is not None
    }
