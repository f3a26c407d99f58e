"""Calendar periods in the organisation's time zone, as UTC instants (pure, no clock).

Reports count answers per day, ISO week or month as the organisation lives them: a day
is local midnight to local midnight, which is 23 or 25 hours long when the clocks
change. The database stores UTC, and SQLite knows no time zones, so the periods are
worked out here with ``zoneinfo`` and handed to the query as ``[start, end)`` UTC
ranges: the same answer on SQLite and PostgreSQL, daylight saving time included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO week, Monday to Sunday
    MONTH = "month"


@dataclass(frozen=True)
class Bucket:
    """One period: its first local day, a label, and its UTC range ``[start, end)``."""

    first_day: date
    label: str  # "2026-05-14", "2026-W20", "2026-05"
    start: datetime
    end: datetime


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` begins in ``zone``."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def day_range(first: date | None, last: date | None, zone: ZoneInfo) -> tuple[datetime | None, ...]:
    """``[start, end)`` in UTC for local days ``first`` to ``last`` inclusive (None: open)."""
    start = local_midnight(first, zone) if first is not None else None
    end = local_midnight(last + timedelta(days=1), zone) if last is not None else None
    return start, end


def period_start(day: date, period: Period) -> date:
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_start(first_day: date, period: Period) -> date:
    if period is Period.DAY:
        return first_day + timedelta(days=1)
    if period is Period.WEEK:
        return first_day + timedelta(days=7)
    return (first_day.replace(day=28) + timedelta(days=4)).replace(day=1)


def label(first_day: date, period: Period) -> str:
    if period is Period.DAY:
        return first_day.isoformat()
    if period is Period.WEEK:
        year, week, _ = first_day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{first_day.year}-{first_day.month:02d}"


def buckets(period: Period, first: date, last: date, zone: ZoneInfo) -> list[Bucket]:
    """Every period touching the local days ``first`` to ``last`` (inclusive), in order."""
    if last < first:
        raise ValueError(f"the period ends ({last}) before it starts ({first})")
    result = []
    day = period_start(first, period)
    while day <= last:
        following = next_start(day, period)
        result.append(
            Bucket(
                first_day=day,
                label=label(day, period),
                start=local_midnight(day, zone),
                end=local_midnight(following, zone),
            )
        )
        day = following
    return result


def local_day(instant: datetime, zone: ZoneInfo) -> date:
    """The local calendar day of an aware instant."""
    return instant.astimezone(zone).date()
