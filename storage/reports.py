"""Report queries: answers counted in SQL, comment pages, the streamed export.

Nothing here loads answers into Python to count them: every count is a GROUP BY in the
database, and what comes back is one row per (group, step, value), a few hundred rows
however many answers there are. The measures themselves (``bot.measures``) are worked
out from those counts by the service layer.

Every query reads one flow and honours one ``AnswerFilter``: the service points the
reader may see (access control), one point, channel or language, a UTC time range,
and whether test data (simulator, ``palaute chat``) is included. Counts and comments
filter answers by ``answered_at``; the export and the run counts filter runs by
``started_at``.

Periods (days, weeks, months in the organisation's time zone) come in as UTC ranges
(``bot.periods``) in a ``VALUES`` list joined to the answers, so SQLite (which knows no
time zones) and PostgreSQL bucket alike, daylight saving time included; each range is
one index range scan of ``ix_answers_flow_step_time``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session

from bot.run import RunStatus
from storage.db import read_only
from storage.sql import dialect_name
from storage.tables import VALUE_KEY_LENGTH, AnswerRow, FlowRunRow, UTCDateTime

_answers = AnswerRow.__table__  # type: ignore[attr-defined]
_runs = FlowRunRow.__table__  # type: ignore[attr-defined]

AnswerValue = int | str | None


class GroupBy(StrEnum):
    POINT = "point"
    CHANNEL = "channel"
    LANGUAGE = "language"
    PERIOD = "period"


@dataclass(frozen=True)
class AnswerFilter:
    flow_id: str
    # The service points the reader may see; None = all, including answers with no point.
    points: frozenset[str] | None = None
    point: str | None = None
    channel: str | None = None
    language: str | None = None
    start: datetime | None = None  # UTC, inclusive
    end: datetime | None = None  # UTC, exclusive
    include_test: bool = False


@dataclass(frozen=True)
class ValueCount:
    """How many answers of ``step_id`` had ``value`` (or were skipped) in ``group``."""

    group: str | int | None  # point / channel / language, or the period's index; None
    step_id: str
    value: AnswerValue  # None: skipped, or a free-text answer (not counted per value)
    skipped: bool
    count: int


@dataclass(frozen=True)
class RunCounts:
    started: int
    completed: int


@dataclass(frozen=True)
class CommentRow:
    answer_id: int
    run_id: int
    step_id: str
    text: str
    language: str
    service_point: str | None
    channel: str
    answered_at: datetime
    score: AnswerValue  # the same run's answer to the score step (None: none)


@dataclass(frozen=True)
class ExportAnswer:
    step_id: str
    value: AnswerValue
    skipped: bool
    truncated: bool


@dataclass(frozen=True)
class ExportRun:
    """One response: a run with its answers by step id."""

    run_id: int
    service_point: str | None
    channel: str
    language: str
    status: str
    started_at: datetime
    completed_at: datetime | None
    answers: dict[str, ExportAnswer]


def _conditions(table: sa.Table, where: AnswerFilter, time_column: str) -> list[Any]:
    conditions: list[Any] = [table.c.flow_id == where.flow_id]
    if not where.include_test:
        conditions.append(table.c.is_test == sa.false())
    if where.points is not None:
        conditions.append(table.c.service_point.in_(sorted(where.points)))
    if where.point is not None:
        conditions.append(table.c.service_point == where.point)
    if where.channel is not None:
        conditions.append(table.c.channel == where.channel)
    if where.language is not None:
        conditions.append(table.c.language == where.language)
    if where.start is not None:
        conditions.append(table.c[time_column] >= where.start)
    if where.end is not None:
        conditions.append(table.c[time_column] < where.end)
    return conditions


_GROUP_COLUMNS = {
    GroupBy.POINT: "service_point",
    GroupBy.CHANNEL: "channel",
    GroupBy.LANGUAGE: "language",
}


def value_counts(
    session: Session,
    where: AnswerFilter,
    *,
    steps: Sequence[str],
    text_steps: Sequence[str] = (),
    group_by: GroupBy | None = None,
    periods: Sequence[tuple[datetime, datetime]] = (),
) -> list[ValueCount]:
    """Answers counted per (group, step, value, skipped), for ``steps`` (counted per
    value) and ``text_steps`` (counted as answered or skipped only).

    ``group_by=PERIOD`` needs ``periods``: UTC ``[start, end)`` ranges, reported by their
    index in the list (answers outside every range are not counted).
    """
    if group_by is GroupBy.PERIOD and not periods:
        return []
    result: list[ValueCount] = []
    for step_ids, per_value in ((steps, True), (text_steps, False)):
        if step_ids:
            statement = _count_statement(where, step_ids, per_value, group_by, periods)
            result += _value_counts(session.execute(statement), grouped=group_by is not None)
    return result


def _count_statement(
    where: AnswerFilter,
    step_ids: Sequence[str],
    per_value: bool,
    group_by: GroupBy | None,
    periods: Sequence[tuple[datetime, datetime]],
) -> Any:
    """One GROUP BY over answers. Ungrouped, its keys follow ``ix_answers_flow_values``
    (step, test, skipped, value) so the database reads that index in order: no sort and
    no table look-ups. Free text is counted, never grouped by."""
    a = _answers
    source: Any = a
    group: Any = None
    if group_by is GroupBy.PERIOD:
        # The periods, cut to the filter's time range, ARE the time condition: with a
        # second range on answers the planners would drive the join from the answers.
        periods = _clipped(periods, where.start, where.end)
        where = replace(where, start=None, end=None)
        buckets = (
            sa.values(
                sa.column("k", sa.Integer),
                sa.column("lo", UTCDateTime()),
                sa.column("hi", UTCDateTime()),
                name="periods",
            )
            .data([(index, start, end) for index, (start, end) in enumerate(periods)])
            .cte("periods")
        )
        source = buckets.join(
            a, sa.and_(a.c.answered_at >= buckets.c.lo, a.c.answered_at < buckets.c.hi)
        )
        group = buckets.c.k
    elif group_by is not None:
        group = a.c[_GROUP_COLUMNS[group_by]]
    conditions = _conditions(a, where, "answered_at")
    conditions.append(a.c.step_id.in_(list(step_ids)))
    keys: list[Any] = [a.c.step_id, a.c.is_test, a.c.skipped]
    if per_value:
        keys += [a.c.value_int, _VALUE_KEY]
        columns = [a.c.step_id, a.c.skipped, a.c.value_int, _VALUE_KEY.label("value_text")]
    else:
        columns = [
            a.c.step_id,
            a.c.skipped,
            sa.null().label("value_int"),
            sa.null().label("value_text"),
        ]
    if group is not None:
        keys.insert(0, group)
        columns.insert(0, group.label("grp"))
    return (
        sa.select(*columns, sa.func.count().label("n"))
        .select_from(source)
        .where(*conditions)
        .group_by(*keys)
    )


def _clipped(
    periods: Sequence[tuple[datetime, datetime]], start: datetime | None, end: datetime | None
) -> list[tuple[datetime, datetime]]:
    """Each period cut to ``[start, end)`` (an empty one stays, with no answers in it)."""
    clipped = []
    for low, high in periods:
        low = max(low, start) if start is not None else low
        high = min(high, end) if end is not None else high
        clipped.append((low, max(low, high)))
    return clipped


# The expression ix_answers_flow_values holds, with its numbers written into the SQL (as
# bound parameters the planners would not match it to the index).
_VALUE_KEY = sa.func.substr(
    _answers.c.value_text, sa.literal_column("1"), sa.literal_column(str(VALUE_KEY_LENGTH))
)


def _value_counts(rows: Any, *, grouped: bool) -> list[ValueCount]:
    result = []
    for row in rows:
        value: AnswerValue = row.value_int if row.value_int is not None else row.value_text
        skipped = bool(row.skipped)
        result.append(
            ValueCount(
                group=row.grp if grouped else None,
                step_id=row.step_id,
                value=None if skipped else value,
                skipped=skipped,
                count=int(row.n),
            )
        )
    return result


def run_counts(session: Session, where: AnswerFilter) -> RunCounts:
    """Runs started and completed (filtered by ``started_at``)."""
    r = _runs
    completed = sa.func.sum(sa.case((r.c.status == RunStatus.COMPLETED.value, 1), else_=0))
    row = session.execute(
        sa.select(sa.func.count().label("started"), completed.label("completed")).where(
            *_conditions(r, where, "started_at")
        )
    ).one()
    return RunCounts(int(row.started or 0), int(row.completed or 0))


def _folded(session: Session, column: Any) -> Any:
    """``column`` lower-cased for a case-insensitive search (SQLite's own ``lower`` only
    knows ASCII: ``storage.db`` gives its connections ``palaute_casefold``)."""
    if dialect_name(session) == "sqlite":
        return sa.func.palaute_casefold(column)
    return sa.func.lower(column)


def _fold_term(session: Session, term: str) -> str:
    return term.casefold() if dialect_name(session) == "sqlite" else term.lower()


def comments(
    session: Session,
    where: AnswerFilter,
    *,
    text_steps: Sequence[str],
    score_step: str | None = None,
    search: str | None = None,
    scores: Sequence[int | str] | None = None,
    before: tuple[datetime, int] | None = None,
    limit: int = 20,
) -> list[CommentRow]:
    """Free-text answers, newest first, with the same run's answer to ``score_step``.

    ``search``: a case-insensitive substring of the text. ``scores``: only runs whose
    score answer is one of these. ``before``: the ``(answered_at, answer_id)`` of the last
    comment of the previous page (keyset pagination: a page costs the same however deep).
    """
    if not text_steps:
        return []
    c = _answers.alias("c")
    s = _answers.alias("s")
    conditions = _conditions(c, where, "answered_at")
    conditions += [c.c.step_id.in_(list(text_steps)), c.c.skipped == sa.false()]
    conditions.append(c.c.value_text.is_not(None))
    source: Any = c
    score_columns: list[Any] = [sa.null().label("score_int"), sa.null().label("score_text")]
    if score_step is not None:
        source = c.outerjoin(s, sa.and_(s.c.run_id == c.c.run_id, s.c.step_id == score_step))
        score_columns = [s.c.value_int.label("score_int"), s.c.value_text.label("score_text")]
        if scores is not None:
            numbers = [v for v in scores if isinstance(v, int)]
            words = [v for v in scores if isinstance(v, str)]
            conditions.append(
                sa.or_(
                    s.c.value_int.in_(numbers) if numbers else sa.false(),
                    s.c.value_text.in_(words) if words else sa.false(),
                )
            )
    if search:
        term = _fold_term(session, search.strip())
        conditions.append(_folded(session, c.c.value_text).contains(term, autoescape=True))
    if before is not None:
        at, answer_id = before
        conditions.append(
            sa.or_(c.c.answered_at < at, sa.and_(c.c.answered_at == at, c.c.id < answer_id))
        )
    statement = (
        sa.select(
            c.c.id,
            c.c.run_id,
            c.c.step_id,
            c.c.value_text,
            c.c.language,
            c.c.service_point,
            c.c.channel,
            c.c.answered_at,
            *score_columns,
        )
        .select_from(source)
        .where(*conditions)
        .order_by(c.c.answered_at.desc(), c.c.id.desc())
        .limit(limit)
    )
    return [
        CommentRow(
            answer_id=int(row.id),
            run_id=int(row.run_id),
            step_id=row.step_id,
            text=row.value_text,
            language=row.language,
            service_point=row.service_point,
            channel=row.channel,
            answered_at=row.answered_at,
            score=row.score_int if row.score_int is not None else row.score_text,
        )
        for row in session.execute(statement)
    ]


def export_runs(
    engine: Engine, where: AnswerFilter, *, chunk: int = 2000, run_id: int | None = None
) -> Iterator[ExportRun]:
    """Every run of the flow with at least one answer, oldest first, with its answers.

    Streams: rows come from a server-side cursor (PostgreSQL) or SQLite's own stepping,
    ``chunk`` at a time, and each run is yielded as soon as its last answer is read, so
    memory stays flat however many runs there are. The connection is held (in one
    read transaction: a consistent snapshot) until the iterator is exhausted or closed.
    ``run_id``: only that run (one response), if it matches ``where``.
    """
    r = _runs
    a = _answers
    statement = (
        sa.select(
            r.c.id,
            r.c.service_point,
            r.c.channel,
            r.c.language,
            r.c.status,
            r.c.started_at,
            r.c.completed_at,
            a.c.step_id,
            a.c.value_int,
            a.c.value_text,
            a.c.skipped,
            a.c.truncated,
        )
        .select_from(r.join(a, a.c.run_id == r.c.id))
        .where(*_conditions(r, where, "started_at"))
        .order_by(r.c.started_at, r.c.id)
    )
    if run_id is not None:
        statement = statement.where(r.c.id == run_id)
    with read_only(engine).connect() as connection:
        streamed = connection.execution_options(stream_results=True, yield_per=chunk)
        with connection.begin():
            current: ExportRun | None = None
            for row in streamed.execute(statement):
                if current is None or current.run_id != row.id:
                    if current is not None:
                        yield current
                    current = ExportRun(
                        run_id=int(row.id),
                        service_point=row.service_point,
                        channel=row.channel,
                        language=row.language,
                        status=row.status,
                        started_at=row.started_at,
                        completed_at=row.completed_at,
                        answers={},
                    )
                current.answers[row.step_id] = ExportAnswer(
                    step_id=row.step_id,
                    value=row.value_int if row.value_int is not None else row.value_text,
                    skipped=bool(row.skipped),
                    truncated=bool(row.truncated),
                )
            if current is not None:
                yield current


def answer_span(
    session: Session, flow_id: str, step_id: str
) -> tuple[datetime | None, datetime | None]:
    """The first and last ``answered_at`` of a step (two index look-ups)."""
    a = _answers
    base = sa.select(a.c.answered_at).where(a.c.flow_id == flow_id, a.c.step_id == step_id)
    first = session.execute(base.order_by(a.c.answered_at).limit(1)).scalar_one_or_none()
    last = session.execute(base.order_by(a.c.answered_at.desc()).limit(1)).scalar_one_or_none()
    return first, last
