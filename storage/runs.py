"""Flow runs, the flow versions they are pinned to, and their answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from bot.run import RecordedAnswer, RunState, RunStatus
from storage.shapes import Direction, StoredContact
from storage.sql import Prepared, connection_of, one_of
from storage.tables import AnswerRow, FlowRunRow, FlowVersionRow, MessageRow, table_of

_runs = table_of(FlowRunRow)
_versions = table_of(FlowVersionRow)
_answers = table_of(AnswerRow)
_messages = table_of(MessageRow)

# Prebuilt statements for the per-message path (values are bound, never rebuilt).
_ACTIVE = sa.select(_runs.c.id, _runs.c.contact_id, _runs.c.state).where(
    _runs.c.contact_id == sa.bindparam("b_contact_id"),
    _runs.c.status == RunStatus.ACTIVE.value,
)
_ACTIVE_LOCKED = _ACTIVE.with_for_update(of=_runs)
_RUN_COLUMNS = (
    "flow_id",
    "flow_version",
    "status",
    "language",
    "service_point",
    "state",
    "updated_at",
    "completed_at",
    "expires_at",
)
_INSERT_RUN = sa.insert(_runs).returning(_runs.c.id)
_UPDATE_RUN = sa.update(_runs).where(_runs.c.id == sa.bindparam("b_id"))
_FAST_ACTIVE = Prepared(_ACTIVE)
_FAST_LATEST = Prepared(
    sa.select(_runs.c.id, _runs.c.contact_id, _runs.c.state)
    .where(_runs.c.contact_id == sa.bindparam("b_contact_id"))
    .order_by(_runs.c.started_at.desc(), _runs.c.id.desc())
    .limit(1)
)


def _active_and_seen(dialect: str) -> Prepared:
    """One row: the inbound message id stored under a provider id (a redelivery), and
    the contact's active run (PostgreSQL: locked), in one statement."""
    seen = (
        sa.select(_messages.c.id)
        .where(
            _messages.c.channel == sa.bindparam("b_channel"),
            _messages.c.direction == Direction.IN.value,
            _messages.c.provider_id == sa.bindparam("b_provider_id"),
        )
        .scalar_subquery()
        .label("seen")
    )
    one = sa.select(sa.literal(1).label("one")).subquery("one")
    run: sa.FromClause
    if dialect == "postgresql":
        run = _ACTIVE_LOCKED.lateral("run")
        joined = one.outerjoin(run, sa.true())
    else:  # SQLite: BEGIN IMMEDIATE already serialises writers; no row locks
        run = _runs
        joined = one.outerjoin(
            _runs,
            sa.and_(
                _runs.c.contact_id == sa.bindparam("b_contact_id"),
                _runs.c.status == RunStatus.ACTIVE.value,
            ),
        )
    return Prepared(sa.select(seen, run.c.id, run.c.contact_id, run.c.state).select_from(joined))


_ACTIVE_AND_SEEN = {name: _active_and_seen(name) for name in ("postgresql", "sqlite")}
_FAST_ACTIVE_LOCKED = Prepared(_ACTIVE_LOCKED)
# Who the run belongs to, fixed at insert: the contact, its channel and test flag.
_OWNER_COLUMNS = ("contact_id", "channel", "is_test")
_FAST_INSERT_RUN = Prepared(_INSERT_RUN, (*_RUN_COLUMNS, *_OWNER_COLUMNS, "started_at"))
# A run keeps its flow version for life (it is pinned to it): an update leaves those two
# columns, and the index on them, alone.
_FAST_UPDATE_RUN = Prepared(_UPDATE_RUN, _RUN_COLUMNS[2:])


def _upsert_answer(insert: Any) -> Any:
    statement = insert(_answers)
    kept = {"id", "run_id", "step_id"}
    return statement.on_conflict_do_update(
        index_elements=["run_id", "step_id"],
        set_={c.name: statement.excluded[c.name] for c in _answers.columns if c.name not in kept},
    )


# A step answered again in the same run (it cannot normally happen) replaces the earlier
# answer rather than failing the whole turn.
_ANSWER_COLUMNS = (
    "run_id",
    "contact_id",
    "flow_id",
    "flow_version",
    "step_id",
    "value_int",
    "value_text",
    "raw_text",
    "language",
    "service_point",
    "channel",
    "is_test",
    "answered_at",
    "skipped",
    "truncated",
)
_UPSERT_ANSWER = {
    "postgresql": Prepared(_upsert_answer(postgresql.insert), _ANSWER_COLUMNS),
    "sqlite": Prepared(_upsert_answer(sqlite.insert), _ANSWER_COLUMNS),
}
_VERSION_SOURCE = sa.select(_versions.c.id, _versions.c.source).where(
    _versions.c.flow_id == sa.bindparam("b_flow_id"),
    _versions.c.version == sa.bindparam("b_version"),
)
_FAST_VERSION_SOURCE = Prepared(_VERSION_SOURCE)
_INSERT_VERSION = {
    name: Prepared(
        insert(_versions).on_conflict_do_nothing(index_elements=["flow_id", "version"]),
        ("flow_id", "version", "source", "first_seen_at"),
    )
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
_FILL_SOURCE = Prepared(
    sa.update(_versions).where(_versions.c.id == sa.bindparam("b_id")), ("source",)
)


@dataclass(frozen=True)
class StoredRun:
    id: int
    contact_id: int
    state: RunState


# --- flow versions ------------------------------------------------------------------------


def remember_flow_version(
    session: Session, flow_id: str, version: str, source: str, now: datetime
) -> None:
    """Store the YAML text of a flow version (once; a missing text is filled in later)."""
    known = _FAST_VERSION_SOURCE.run(session, {"b_flow_id": flow_id, "b_version": version}).first()
    if known is not None:
        if source and not known.source:
            _FILL_SOURCE.run(session, {"b_id": known.id, "source": source})
        return
    _INSERT_VERSION[connection_of(session).dialect.name].run(
        session, {"flow_id": flow_id, "version": version, "source": source, "first_seen_at": now}
    )


def flow_version_source(session: Session, flow_id: str, version: str) -> str | None:
    source = session.execute(
        sa.select(_versions.c.source).where(
            _versions.c.flow_id == flow_id, _versions.c.version == version
        )
    ).scalar_one_or_none()
    return None if source is None else str(source)


def known_flow_versions(session: Session, flow_id: str) -> list[tuple[str, datetime]]:
    rows = session.execute(
        sa.select(_versions.c.version, _versions.c.first_seen_at)
        .where(_versions.c.flow_id == flow_id)
        .order_by(_versions.c.first_seen_at, _versions.c.id)
    )
    return [(row.version, row.first_seen_at) for row in rows]


# --- runs ---------------------------------------------------------------------------------


def active_run(session: Session, contact_id: int, *, lock: bool = False) -> StoredRun | None:
    statement = _FAST_ACTIVE_LOCKED if lock else _FAST_ACTIVE
    row = statement.run(session, {"b_contact_id": contact_id}).first()
    if row is None:
        return None
    return StoredRun(int(row.id), int(row.contact_id), RunState.from_json(row.state))


def active_run_and_seen(
    session: Session, contact_id: int, channel: str, provider_id: str | None
) -> tuple[StoredRun | None, int | None]:
    """The contact's active run (locked like ``active_run(lock=True)``) and the id of the
    inbound message already stored with ``provider_id`` (None: not seen, or no id).

    Call it with the contact locked: the statement then sees every earlier message of
    this contact, committed before the lock was granted.
    """
    statement = _ACTIVE_AND_SEEN[connection_of(session).dialect.name]
    row = statement.run(
        session,
        {"b_contact_id": contact_id, "b_channel": channel, "b_provider_id": provider_id},
    ).first()
    seen = int(row.seen) if row.seen is not None else None
    if row.id is None:
        return None, seen
    return StoredRun(int(row.id), int(row.contact_id), RunState.from_json(row.state)), seen


def latest_run(session: Session, contact_id: int) -> StoredRun | None:
    """The contact's most recently started run, whatever its status."""
    row = _FAST_LATEST.run(session, {"b_contact_id": contact_id}).first()
    if row is None:
        return None
    return StoredRun(int(row.id), int(row.contact_id), RunState.from_json(row.state))


def runs_of(session: Session, contact_id: int) -> list[StoredRun]:
    rows = session.execute(
        sa.select(_runs.c.id, _runs.c.contact_id, _runs.c.state)
        .where(_runs.c.contact_id == contact_id)
        .order_by(_runs.c.started_at, _runs.c.id)
    )
    return [StoredRun(int(r.id), int(r.contact_id), RunState.from_json(r.state)) for r in rows]


def last_started_at(session: Session, contact_id: int, flow_id: str) -> datetime | None:
    """When this contact last started ``flow_id`` (frequency caps for follow-ups)."""
    value = session.execute(
        sa.select(sa.func.max(_runs.c.started_at)).where(
            _runs.c.contact_id == contact_id, _runs.c.flow_id == flow_id
        )
    ).scalar_one_or_none()
    return value if isinstance(value, datetime) else None


def insert_run(session: Session, contact: StoredContact, state: RunState, now: datetime) -> int:
    """A new run of ``contact`` (its channel and test flag are copied for reports)."""
    values = _run_values(state, now)
    values.update(_owner(contact), started_at=state.started_at)
    return int(_FAST_INSERT_RUN.run(session, values).scalar())


def _owner(contact: StoredContact) -> dict[str, object]:
    return {"contact_id": contact.id, "channel": contact.channel, "is_test": contact.is_test}


def update_run(session: Session, run_id: int, state: RunState, now: datetime) -> None:
    """Store the run's new state (its flow and version never change)."""
    _FAST_UPDATE_RUN.run(session, {"b_id": run_id, **_run_values(state, now)})


def due_for_expiry(session: Session, now: datetime, limit: int) -> list[StoredRun]:
    """Active runs past ``expires_at``, locked (PostgreSQL skips rows being handled)."""
    statement = (
        sa.select(_runs.c.id, _runs.c.contact_id, _runs.c.state)
        .where(_runs.c.status == RunStatus.ACTIVE.value, _runs.c.expires_at <= now)
        .order_by(_runs.c.expires_at, _runs.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [
        StoredRun(int(r.id), int(r.contact_id), RunState.from_json(r.state))
        for r in session.execute(statement)
    ]


def _run_values(state: RunState, now: datetime) -> dict[str, object]:
    closed = state.status != RunStatus.ACTIVE
    return {
        "flow_id": state.flow_id,
        "flow_version": state.flow_version,
        "status": state.status.value,
        "language": state.language,
        "service_point": state.service_point,
        "state": state.to_json(),
        "updated_at": now,
        "completed_at": now if closed else None,
        "expires_at": state.expires_at,
    }


# --- answers ------------------------------------------------------------------------------


def insert_answers(
    session: Session,
    *,
    run_id: int,
    contact: StoredContact,
    state: RunState,
    answers: Sequence[RecordedAnswer],
) -> None:
    upsert = _UPSERT_ANSWER[connection_of(session).dialect.name]
    rows = []
    for answer in answers:
        value_int = answer.value if isinstance(answer.value, int) else None
        value_text = answer.value if isinstance(answer.value, str) else None
        values = {
            "run_id": run_id,
            "contact_id": contact.id,
            "channel": contact.channel,
            "is_test": contact.is_test,
            "flow_id": state.flow_id,
            "flow_version": state.flow_version,
            "step_id": answer.step_id,
            "value_int": value_int,
            "value_text": value_text,
            "raw_text": answer.raw_text,
            "language": answer.language,
            "service_point": state.service_point,
            "answered_at": answer.answered_at,
            "skipped": answer.skipped,
            "truncated": answer.truncated,
        }
        rows.append(values)
    upsert.run_many(session, rows)


@dataclass(frozen=True)
class StoredAnswer:
    run_id: int
    contact_id: int
    flow_id: str
    flow_version: str
    step_id: str
    value: int | str | None
    raw_text: str
    language: str
    service_point: str | None
    answered_at: datetime
    skipped: bool
    truncated: bool


def answers_of_run(session: Session, run_id: int) -> list[StoredAnswer]:
    return _answers_where(session, _answers.c.run_id == run_id)


def answers_of_flow(session: Session, flow_id: str) -> list[StoredAnswer]:
    return _answers_where(session, _answers.c.flow_id == flow_id)


def _answers_where(session: Session, condition: sa.ColumnElement[bool]) -> list[StoredAnswer]:
    rows = session.execute(
        sa.select(_answers).where(condition).order_by(_answers.c.answered_at, _answers.c.id)
    )
    return [
        StoredAnswer(
            run_id=int(r.run_id),
            contact_id=int(r.contact_id),
            flow_id=r.flow_id,
            flow_version=r.flow_version,
            step_id=r.step_id,
            value=r.value_int if r.value_int is not None else r.value_text,
            raw_text=r.raw_text,
            language=r.language,
            service_point=r.service_point,
            answered_at=r.answered_at,
            skipped=bool(r.skipped),
            truncated=bool(r.truncated),
        )
        for r in rows
    ]


# --- batches (the clock's follow-up path) -------------------------------------------------


def active_runs(
    session: Session, contact_ids: Sequence[int], *, lock: bool = False
) -> dict[int, StoredRun]:
    """``active_run`` for many contacts in one statement: contact id -> its active run."""
    ids = sorted(set(contact_ids))
    if not ids:
        return {}
    statement = (
        sa.select(_runs.c.id, _runs.c.contact_id, _runs.c.state)
        .where(one_of(session, _runs.c.contact_id, ids), _runs.c.status == RunStatus.ACTIVE.value)
        .order_by(_runs.c.contact_id)
    )
    if lock:
        statement = statement.with_for_update(of=_runs)
    return {
        int(r.contact_id): StoredRun(int(r.id), int(r.contact_id), RunState.from_json(r.state))
        for r in session.execute(statement)
    }


def insert_runs(
    session: Session, runs: Sequence[tuple[StoredContact, RunState]], now: datetime
) -> list[int]:
    """``insert_run`` for many ``(contact, state)`` pairs; their ids, in the same order."""
    if not runs:
        return []
    rows = []
    for contact, state in runs:
        values = _run_values(state, now)
        values.update(_owner(contact), started_at=state.started_at)
        rows.append(values)
    ids = session.execute(
        sa.insert(_runs).returning(_runs.c.id, sort_by_parameter_order=True), rows
    ).scalars()
    return [int(i) for i in ids]


def update_runs(session: Session, runs: Sequence[tuple[int, RunState]], now: datetime) -> None:
    """``update_run`` for many ``(run id, state)`` pairs, in order (one executemany)."""
    _FAST_UPDATE_RUN.run_many(
        session, [{"b_id": run_id, **_run_values(state, now)} for run_id, state in runs]
    )
