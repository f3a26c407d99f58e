"""The follow-up funnel: what became of each flow's follow-ups (the honest denominator
for response rates: visits, sent, skipped by reason, delivered, started, completed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from storage.followup_tables import FollowupRow, FollowupStatus, VisitRow
from storage.followups import FIRST, REMINDER
from storage.tables import AnswerRow, FlowRunRow, MessageRow

_visits = VisitRow.__table__  # type: ignore[attr-defined]
_followups = FollowupRow.__table__  # type: ignore[attr-defined]
_runs = FlowRunRow.__table__  # type: ignore[attr-defined]
_answers = AnswerRow.__table__  # type: ignore[attr-defined]
_messages = MessageRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class FlowFunnel:
    """What became of one flow's follow-ups: the honest denominator for response rates."""

    flow_id: str
    visits: int
    pending: int  # scheduled or claimed, not yet due or being sent
    sent: int  # first prompt queued for sending
    skipped: dict[str, int]  # reason -> count
    delivered: int  # the provider confirmed delivery of the first prompt
    started: int  # at least one answer
    completed: int
    reminders_sent: int


def funnel(
    session: Session,
    organisation: str | None = None,
    since: datetime | None = None,
    *,
    points: frozenset[str] | None = None,
) -> list[FlowFunnel]:
    """Per flow: visits, sent, skipped (by reason), delivered, started and completed runs.

    ``points``: only visits at these service points (what a reader may see); None: all.
    """
    messages = _messages
    visit_filter: list[sa.ColumnElement[bool]] = []
    if points is not None:
        visit_filter.append(_visits.c.service_point.in_(sorted(points)))
    if organisation is not None:
        visit_filter.append(_visits.c.organisation == organisation)
    if since is not None:
        visit_filter.append(_visits.c.visit_at >= since)
    rows = session.execute(
        sa.select(
            _visits.c.flow_id,
            _followups.c.kind,
            _followups.c.status,
            _followups.c.skip_reason,
            sa.func.count().label("n"),
        )
        .join(_visits, _visits.c.id == _followups.c.visit_id)
        .where(*visit_filter)
        .group_by(
            _visits.c.flow_id, _followups.c.kind, _followups.c.status, _followups.c.skip_reason
        )
    ).all()
    sent_runs = (
        sa.select(_visits.c.flow_id, _followups.c.run_id)
        .join(_visits, _visits.c.id == _followups.c.visit_id)
        .where(
            *visit_filter,
            _followups.c.kind == FIRST,
            _followups.c.status == FollowupStatus.SENT.value,
            _followups.c.run_id.is_not(None),
        )
        .subquery()
    )
    delivered = dict(
        session.execute(
            sa.select(sent_runs.c.flow_id, sa.func.count(sa.distinct(sent_runs.c.run_id)))
            .join(messages, messages.c.run_id == sent_runs.c.run_id)
            .where(messages.c.direction == "out", messages.c.status == "delivered")
            .group_by(sent_runs.c.flow_id)
        ).all()
    )
    started = dict(
        session.execute(
            sa.select(sent_runs.c.flow_id, sa.func.count(sa.distinct(sent_runs.c.run_id)))
            .join(_answers, _answers.c.run_id == sent_runs.c.run_id)
            .group_by(sent_runs.c.flow_id)
        ).all()
    )
    completed = dict(
        session.execute(
            sa.select(sent_runs.c.flow_id, sa.func.count())
            .join(_runs, _runs.c.id == sent_runs.c.run_id)
            .where(_runs.c.status == "completed")
            .group_by(sent_runs.c.flow_id)
        ).all()
    )
    result: dict[str, dict[str, Any]] = {}
    for r in rows:
        item = result.setdefault(
            r.flow_id, {"visits": 0, "pending": 0, "sent": 0, "skipped": {}, "reminders": 0}
        )
        if r.kind == REMINDER:
            if r.status == FollowupStatus.SENT.value:
                item["reminders"] += int(r.n)
            continue
        item["visits"] += int(r.n)
        if r.status == FollowupStatus.SENT.value:
            item["sent"] += int(r.n)
        elif r.status == FollowupStatus.SKIPPED.value:
            reason = r.skip_reason or "unknown"
            item["skipped"][reason] = item["skipped"].get(reason, 0) + int(r.n)
        else:
            item["pending"] += int(r.n)
    return [
        FlowFunnel(
            flow_id=flow_id,
            visits=item["visits"],
            pending=item["pending"],
            sent=item["sent"],
            skipped=dict(sorted(item["skipped"].items())),
            delivered=int(delivered.get(flow_id, 0)),
            started=int(started.get(flow_id, 0)),
            completed=int(completed.get(flow_id, 0)),
            reminders_sent=item["reminders"],
        )
        for flow_id, item in sorted(result.items())
    ]
