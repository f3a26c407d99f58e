"""Visits: stored once per (organisation, source, external id), each with its first follow-up.

Like the other repositories, functions take the caller's session and do not commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from storage.followup_tables import FollowupRow, FollowupStatus, VisitRow
from storage.followups import FIRST
from storage.sql import dialect_name, one_of
from storage.tables import table_of

_visits = table_of(VisitRow)
_followups = table_of(FollowupRow)


@dataclass(frozen=True)
class NewVisit:
    organisation: str
    source: str
    external_id: str
    service_point: str | None
    visit_at: datetime
    timezone: str
    contact_id: int | None
    channel: str | None
    language: str | None
    flow_id: str
    due_at: datetime | None  # the first follow-up; None with skip_reason
    skip_reason: str | None = None


def add_visits(
    session: Session, visits: Sequence[NewVisit], now: datetime
) -> list[tuple[int, bool]]:
    """Store visits with their first follow-ups, each (organisation, source, id) once.

    Returns (visit id, newly created) per visit, in order. A visit already stored (or
    earlier in the same list) is left exactly as it is. Two statements per batch.
    """
    if not visits:
        return []
    keys = [(v.organisation, v.source, v.external_id) for v in visits]
    first_of: dict[tuple[str, str, str], int] = {}
    for index, key in enumerate(keys):
        first_of.setdefault(key, index)
    unique = [visits[i] for i in sorted(first_of.values())]
    insert: Any = (postgresql if dialect_name(session) == "postgresql" else sqlite).insert(_visits)
    # An executemany (SQLAlchemy sends it as multi-row INSERTs): compiled once, not per batch.
    rows = session.execute(
        insert.on_conflict_do_nothing(
            index_elements=["organisation", "source", "external_id"]
        ).returning(_visits.c.id, _visits.c.organisation, _visits.c.source, _visits.c.external_id),
        [
            {
                "organisation": v.organisation,
                "source": v.source,
                "external_id": v.external_id,
                "service_point": v.service_point,
                "visit_at": v.visit_at,
                "timezone": v.timezone,
                "contact_id": v.contact_id,
                "channel": v.channel,
                "language": v.language,
                "flow_id": v.flow_id,
                "created_at": now,
            }
            for v in unique
        ],
    ).all()
    created = {(r.organisation, r.source, r.external_id): int(r.id) for r in rows}
    new_followups = []
    for v in unique:
        key = (v.organisation, v.source, v.external_id)
        if key not in created:
            continue
        skipped = v.skip_reason is not None or v.due_at is None
        new_followups.append(
            {
                "visit_id": created[key],
                "kind": FIRST,
                "status": (FollowupStatus.SKIPPED if skipped else FollowupStatus.SCHEDULED).value,
                "skip_reason": v.skip_reason,
                "planned_at": v.due_at,
                "due_at": None if skipped else v.due_at,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
    if new_followups:
        session.execute(sa.insert(_followups), new_followups)
    results: list[tuple[int, bool]] = []
    claimed: set[tuple[str, str, str]] = set()
    for index, key in enumerate(keys):
        if key in created and first_of[key] == index:
            results.append((created[key], True))
            claimed.add(key)
            continue
        visit_id = created.get(key) or find_visit(session, *key)
        if visit_id is None:  # pragma: no cover - inserted above or by a racing transaction
            raise RuntimeError("visit vanished right after it was stored")
        results.append((visit_id, False))
    return results


def find_visit(session: Session, organisation: str, source: str, external_id: str) -> int | None:
    found = session.execute(
        sa.select(_visits.c.id).where(
            _visits.c.organisation == organisation,
            _visits.c.source == source,
            _visits.c.external_id == external_id,
        )
    ).scalar_one_or_none()
    return int(found) if found is not None else None


def existing_ids(
    session: Session, organisation: str, source: str, external_ids: Sequence[str]
) -> set[str]:
    """Which of ``external_ids`` are already stored (for dry runs and reports)."""
    found: set[str] = set()
    ids = list(dict.fromkeys(external_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = session.execute(
            sa.select(_visits.c.external_id).where(
                _visits.c.organisation == organisation,
                _visits.c.source == source,
                one_of(session, _visits.c.external_id, chunk),
            )
        )
        found.update(str(r[0]) for r in rows)
    return found
