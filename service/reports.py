"""Results for staff: the one way to read what citizens answered.

``ResultsService`` answers the questions the dashboard pages, the ``palaute results``
commands and the exports ask, each for one flow and one ``ResultsFilter`` (the service
points the reader may see, a point, channel, language, local date range, test data):

- ``summary``: every step's responses, distribution and measure (``bot.measures``);
- ``breakdown``: one step per service point, channel, language or period;
- ``trend``: the main measure per day, ISO week or month, with its 95% interval;
- ``comments``: free-text answers with the same run's score, newest first, a page at a
  time (search, score filter, keyset cursor);
- ``export_rows``: one row per response, streamed (writers in ``service.exports``).

Counting happens in SQL (``storage.reports``), the measures and the small-number
suppression in the pure core. Dates are the organisation's local days.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from bot.conversation import FlowCatalogue
from bot.flow import Flow, Step, StepKind
from bot.measures import (
    Figure,
    Headline,
    StepResult,
    Tally,
    Value,
    answer_label,
    is_countable,
    main_step,
    step_result,
)
from bot.periods import Bucket, Period, buckets, day_range, local_day
from storage import funnel as funnel_store
from storage import reports as queries
from storage.db import read_only, transaction
from storage.funnel import FlowFunnel
from storage.reports import AnswerFilter, ExportRun, GroupBy

__all__ = [
    "Breakdown",
    "Comment",
    "CommentsPage",
    "ExportRow",
    "FlowFunnel",
    "FlowSummary",
    "GroupBy",
    "NotAllowed",
    "Period",
    "ResultsFilter",
    "ResultsService",
    "StepSummary",
    "Trend",
    "TrendPoint",
    "UnknownFlow",
]


class UnknownFlow(LookupError):
    """No flow with this id is loaded."""


class NotAllowed(PermissionError):
    """The reader asked for a service point they have not been granted."""


class BadFilter(ValueError):
    """A filter value that cannot be used (what and how to fix it in the message)."""


@dataclass(frozen=True)
class ResultsFilter:
    flow_id: str
    # Service points the reader may see (access control); None = every point, and
    # responses with none. An analyst passes the points granted to them.
    points_allowed: frozenset[str] | None = None
    point: str | None = None
    channel: str | None = None
    language: str | None = None
    date_from: date | None = None  # local days, inclusive
    date_to: date | None = None
    include_test: bool = False


@dataclass(frozen=True)
class StepSummary:
    step_id: str
    kind: StepKind
    title: str  # the question in the reader's language
    result: StepResult
    labels: dict[str, str]  # cell key -> readable answer label


@dataclass(frozen=True)
class FlowSummary:
    flow_id: str
    title: str
    filters: ResultsFilter
    runs_started: Figure
    runs_completed: Figure
    steps: tuple[StepSummary, ...]
    main_step: str | None

    def step(self, step_id: str) -> StepSummary:
        for summary in self.steps:
            if summary.step_id == step_id:
                return summary
        raise KeyError(step_id)


@dataclass(frozen=True)
class Breakdown:
    """One step's results per group (service point, channel, language or period)."""

    step_id: str
    by: GroupBy
    groups: tuple[tuple[str, StepResult], ...]


@dataclass(frozen=True)
class TrendPoint:
    label: str  # "2026-W20"
    first_day: date
    responses: Figure
    headline: Headline | None  # None: no data, or suppressed


@dataclass(frozen=True)
class Trend:
    flow_id: str
    step_id: str
    measure: str | None  # the headline's name: "csat", "nps", "fft", "smiley", "mean"
    period: Period
    points: tuple[TrendPoint, ...]


@dataclass(frozen=True)
class Comment:
    answer_id: int
    run_id: int
    step_id: str
    text: str
    language: str
    service_point: str | None
    channel: str
    answered_at: datetime  # aware, in the organisation's time zone
    score: Value | None  # the same run's answer to the main step
    score_label: str | None


@dataclass(frozen=True)
class CommentsPage:
    comments: tuple[Comment, ...]
    next_cursor: str | None  # pass as ``cursor`` for the next (older) page


@dataclass(frozen=True)
class ExportAnswer:
    step_id: str
    value: Value | None  # stored value (None: skipped or not asked)
    label: str  # readable, in the export's language ("" when not asked)
    skipped: bool


@dataclass(frozen=True)
class ExportRow:
    run_id: int
    service_point: str | None
    channel: str
    language: str
    status: str
    started_at: datetime  # local
    completed_at: datetime | None
    answers: tuple[ExportAnswer, ...] = field(default=())  # one per step, in flow order


class ResultsService:
    def __init__(self, engine: Engine, catalogue: FlowCatalogue, *, timezone: str) -> None:
        self.engine = engine
        self._reader = read_only(engine)
        self.catalogue = catalogue
        self.zone = ZoneInfo(timezone)

    # --- lookups ------------------------------------------------------------------------

    def flow(self, flow_id: str) -> Flow:
        flow = self.catalogue.get(flow_id)
        if flow is None:
            known = ", ".join(sorted(f.id for f in self.catalogue.all())) or "none"
            raise UnknownFlow(f"no flow {flow_id!r} is loaded (known: {known})")
        return flow

    def _where(self, filters: ResultsFilter) -> AnswerFilter:
        if (
            filters.point is not None
            and filters.points_allowed is not None
            and filters.point not in filters.points_allowed
        ):
            raise NotAllowed(f"service point {filters.point!r} is not among your points")
        if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
            raise BadFilter(
                f"the date range ends ({filters.date_to}) before it starts ({filters.date_from})"
            )
        start, end = day_range(filters.date_from, filters.date_to, self.zone)
        return AnswerFilter(
            flow_id=filters.flow_id,
            points=filters.points_allowed,
            point=filters.point,
            channel=filters.channel,
            language=filters.language,
            start=start,
            end=end,
            include_test=filters.include_test,
        )

    # --- summary ------------------------------------------------------------------------

    def summary(self, filters: ResultsFilter, *, language: str | None = None) -> FlowSummary:
        """Every answered step of the flow: responses, distribution, measures."""
        flow = self.flow(filters.flow_id)
        language = language or flow.default_language
        where = self._where(filters)
        counted = [s.id for s in flow.steps if is_countable(s)]
        texts = [s.id for s in flow.steps if s.kind is StepKind.TEXT]
        with transaction(self._reader) as session:
            rows = queries.value_counts(session, where, steps=counted, text_steps=texts)
            runs = queries.run_counts(session, where)
        tallies = _tallies(rows)
        steps = []
        for step in flow.steps:
            if step.kind is StepKind.MESSAGE:
                continue
            result = step_result(step, tallies.get((None, step.id), Tally({})))
            steps.append(_step_summary(flow, step, result, language))
        main = main_step(flow)
        return FlowSummary(
            flow_id=flow.id,
            title=flow.text(flow.title, language),
            filters=filters,
            runs_started=_count_figure(runs.started),
            runs_completed=_count_figure(runs.completed),
            steps=tuple(steps),
            main_step=main.id if main else None,
        )

    def breakdown(
        self, filters: ResultsFilter, by: GroupBy, *, step_id: str | None = None
    ) -> Breakdown:
        """One step (default: the main one) per point, channel or language. For periods
        use ``trend``."""
        if by is GroupBy.PERIOD:
            raise BadFilter("a breakdown by period is a trend: use ResultsService.trend")
        flow = self.flow(filters.flow_id)
        step = self._step(flow, step_id)
        where = self._where(filters)
        with transaction(self._reader) as session:
            counted, texts = _split(step)
            rows = queries.value_counts(
                session, where, steps=counted, text_steps=texts, group_by=by
            )
        tallies = _tallies(rows)
        keys = sorted({group for group, _ in tallies}, key=lambda g: (g is None, str(g)))
        return Breakdown(
            step_id=step.id,
            by=by,
            groups=tuple(
                ("" if key is None else str(key), step_result(step, tallies[(key, step.id)]))
                for key in keys
            ),
        )

    # --- trend --------------------------------------------------------------------------

    def trend(
        self,
        filters: ResultsFilter,
        period: Period = Period.WEEK,
        *,
        step_id: str | None = None,
    ) -> Trend:
        """The step's (default: the main step's) headline per period, with its interval.

        Without dates the trend spans the step's first to last answer.
        """
        flow = self.flow(filters.flow_id)
        step = self._step(flow, step_id)
        where = self._where(filters)
        with transaction(self._reader) as session:
            first, last = filters.date_from, filters.date_to
            if first is None or last is None:
                low, high = queries.answer_span(session, flow.id, step.id)
                if low is None or high is None:
                    return Trend(flow.id, step.id, None, period, ())
                first = first or local_day(low, self.zone)
                last = last or local_day(high, self.zone)
            if last < first:
                return Trend(flow.id, step.id, None, period, ())
            spans: list[Bucket] = buckets(period, first, last, self.zone)
            counted, texts = _split(step)
            rows = queries.value_counts(
                session,
                where,
                steps=counted,
                text_steps=texts,
                group_by=GroupBy.PERIOD,
                periods=[(b.start, b.end) for b in spans],
            )
        tallies = _tallies(rows)
        points = []
        name: str | None = None
        for index, bucket in enumerate(spans):
            result = step_result(step, tallies.get((index, step.id), Tally({})))
            headline = result.headline
            if headline is not None:
                name = headline.name
            points.append(TrendPoint(bucket.label, bucket.first_day, result.responses, headline))
        return Trend(flow.id, step.id, name, period, tuple(points))

    # --- comments -----------------------------------------------------------------------

    def comments(
        self,
        filters: ResultsFilter,
        *,
        search: str | None = None,
        scores: Sequence[str] | None = None,
        cursor: str | None = None,
        limit: int = 20,
        language: str | None = None,
    ) -> CommentsPage:
        """Free-text answers, newest first, ``limit`` per page.

        ``scores``: keep comments whose run answered the main step with one of these
        (as typed: "4", "very_good"). ``cursor``: ``next_cursor`` of the previous page.
        """
        if not 1 <= limit <= 500:
            raise BadFilter(f"a page holds 1 to 500 comments, not {limit}")
        flow = self.flow(filters.flow_id)
        language = language or flow.default_language
        where = self._where(filters)
        main = main_step(flow)
        texts = [s.id for s in flow.steps if s.kind is StepKind.TEXT]
        wanted = _score_values(main, scores) if scores else None
        before = _parse_cursor(cursor) if cursor else None
        with transaction(self._reader) as session:
            rows = queries.comments(
                session,
                where,
                text_steps=texts,
                score_step=main.id if main else None,
                search=search or None,
                scores=wanted,
                before=before,
                limit=limit + 1,
            )
        more = len(rows) > limit
        rows = rows[:limit]
        comments = tuple(
            Comment(
                answer_id=row.answer_id,
                run_id=row.run_id,
                step_id=row.step_id,
                text=row.text,
                language=row.language,
                service_point=row.service_point,
                channel=row.channel,
                answered_at=row.answered_at.astimezone(self.zone),
                score=row.score,
                score_label=(
                    answer_label(flow, main, row.score, language)
                    if main is not None and row.score is not None
                    else None
                ),
            )
            for row in rows
        )
        last = rows[-1] if rows else None
        next_cursor = (
            f"{last.answered_at.astimezone(UTC).isoformat()}~{last.answer_id}"
            if more and last
            else None
        )
        return CommentsPage(comments, next_cursor)

    # --- export -------------------------------------------------------------------------

    def export_rows(
        self, filters: ResultsFilter, *, language: str | None = None
    ) -> Iterator[ExportRow]:
        """Every response (run with answers), oldest first, streamed from the database."""
        flow = self.flow(filters.flow_id)
        language = language or flow.default_language
        where = self._where(filters)
        steps = [s for s in flow.steps if s.kind is not StepKind.MESSAGE]
        for run in queries.export_runs(self.engine, where):
            yield self._export_row(flow, steps, run, language)

    def _export_row(
        self, flow: Flow, steps: Sequence[Step], run: ExportRun, language: str
    ) -> ExportRow:
        answers = []
        for step in steps:
            stored = run.answers.get(step.id)
            if stored is None:
                answers.append(ExportAnswer(step.id, None, "", False))
            elif stored.skipped or stored.value is None:
                answers.append(ExportAnswer(step.id, None, "", True))
            else:
                label = (
                    str(stored.value)
                    if step.kind is StepKind.TEXT
                    else answer_label(flow, step, stored.value, language)
                )
                answers.append(ExportAnswer(step.id, stored.value, label, False))
        return ExportRow(
            run_id=run.run_id,
            service_point=run.service_point,
            channel=run.channel,
            language=run.language,
            status=run.status,
            started_at=run.started_at.astimezone(self.zone),
            completed_at=run.completed_at.astimezone(self.zone) if run.completed_at else None,
            answers=tuple(answers),
        )

    def response(
        self, filters: ResultsFilter, run_id: int, *, language: str | None = None
    ) -> ExportRow | None:
        """One response (a run's answers) if it matches ``filters`` (its flow and the
        reader's points), else None: a run of another unit is "not found" to the reader."""
        flow = self.flow(filters.flow_id)
        language = language or flow.default_language
        where = self._where(filters)
        steps = [s for s in flow.steps if s.kind is not StepKind.MESSAGE]
        runs = queries.export_runs(self.engine, where, run_id=run_id)
        try:
            for run in runs:
                return self._export_row(flow, steps, run, language)
        finally:
            runs.close()  # type: ignore[attr-defined]
        return None

    # --- follow-up funnel ---------------------------------------------------------------

    def funnel(
        self,
        organisation: str,
        *,
        points_allowed: frozenset[str] | None = None,
        since: date | None = None,
    ) -> list[FlowFunnel]:
        """Per flow: visits -> sent -> delivered -> started -> completed (what
        ``palaute visits report`` prints), counting only visits at ``points_allowed``."""
        start = day_range(since, None, self.zone)[0] if since else None
        with transaction(self._reader) as session:
            return funnel_store.funnel(session, organisation, start, points=points_allowed)

    # --- helpers ------------------------------------------------------------------------

    def _step(self, flow: Flow, step_id: str | None) -> Step:
        if step_id is None:
            step = main_step(flow)
            if step is None:
                raise BadFilter(f"flow {flow.id!r} has no step with a measure or a scale")
            return step
        if not flow.has_step(step_id):
            steps = ", ".join(s.id for s in flow.steps)
            raise BadFilter(f"flow {flow.id!r} has no step {step_id!r} (steps: {steps})")
        return flow.step(step_id)


def _tallies(rows: Sequence[queries.ValueCount]) -> dict[tuple[object, str], Tally]:
    counts: dict[tuple[object, str], dict[Value, int]] = {}
    skipped: dict[tuple[object, str], int] = {}
    for row in rows:
        key = (row.group, row.step_id)
        counts.setdefault(key, {})
        if row.skipped:
            skipped[key] = skipped.get(key, 0) + row.count
        else:
            value: Value = row.value if row.value is not None else "answered"
            counts[key][value] = counts[key].get(value, 0) + row.count
    return {key: Tally(values, skipped.get(key, 0)) for key, values in counts.items()}


def _split(step: Step) -> tuple[list[str], list[str]]:
    """(steps counted per value, free-text steps) for a query about one step."""
    if step.kind is StepKind.TEXT:
        return [], [step.id]
    return [step.id], []


def _step_summary(flow: Flow, step: Step, result: StepResult, language: str) -> StepSummary:
    labels = {
        cell.key: answer_label(flow, step, cell.value, language)
        for cell in result.distribution
        if cell.value is not None
    }
    return StepSummary(step.id, step.kind, flow.text(step.text, language), result, labels)


def _count_figure(count: int) -> Figure:
    return Figure(None, True) if 0 < count < 5 else Figure(count, False)


def _score_values(main: Step | None, scores: Sequence[str]) -> list[int | str]:
    if main is None:
        raise BadFilter("this flow has no scored step to filter comments by")
    if main.kind is StepKind.CHOICE or main.kind is StepKind.YES_NO:
        return [s.strip() for s in scores]
    values: list[int | str] = []
    for score in scores:
        try:
            values.append(int(score))
        except ValueError:
            raise BadFilter(f"score {score!r}: give a number, e.g. 4") from None
    return values


def _parse_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        at, answer_id = cursor.rsplit("~", 1)
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, int(answer_id)
    except ValueError:
        raise BadFilter(
            f"cursor {cursor!r} is not one this service gave out: start from the first page"
        ) from None
