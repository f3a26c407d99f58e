"""When to send a follow-up survey after a visit, and when not to send it at all.

Pure functions over a ``FollowupRule``: no clock reads (``now`` is passed in), no storage.
All instants are timezone-aware; results are in UTC. Local rules (the send window, excluded
days) are applied in the contact's time zone with ``zoneinfo``:

* an instant is *sendable* when its local wall-clock time is within ``[start, end)`` of the
  window and its local weekday is one of the window's days;
* the send time is the first sendable instant at or after ``visit + delay``;
* on a spring-forward day a window start that falls in the gap (e.g. 03:30 in Helsinki on
  the last Sunday of March) opens at the first instant after the gap (04:00 new time);
* on a fall-back day the repeated hour is sendable once per occurrence, but a follow-up is
  scheduled for exactly one instant (the first one at or after the earliest time), so it is
  never sent twice.

Durations in whole days (``delay``, ``reminder_after``, ``give_up_after``) keep the local
wall-clock time across a DST change ("1 day after 10:00" is 10:00 next day, not 09:00 or
11:00); the sub-day remainder is elapsed time ("2 h after the visit" is 2 real hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.flow import FollowupRule, QuietHours


class SkipReason(StrEnum):
    """Why a follow-up was not sent. Stored, and shown to staff next to response rates."""

    OPTED_OUT = "opted_out"  # the citizen said STOP (on this channel)
    CAPPED = "capped"  # surveyed too recently (frequency cap across the organisation's flows)
    EXPIRED = "expired"  # could not be sent before the rule's give_up_after
    INVALID_NUMBER = "invalid_number"  # the phone number given with the visit is not valid
    NO_CHANNEL = "no_channel"  # the visit came without any way to reach the citizen
    UNREACHABLE = "unreachable"  # the provider refuses the address (landline, blocked bot)
    ANSWERED = "answered"  # reminders only: the citizen already answered, none needed
    FLOW_REMOVED = "flow_removed"  # the flow (or its followup section) is gone from flows/


class FollowupKind(StrEnum):
    FIRST = "first"
    REMINDER = "reminder"


# Sent before the current question again when a reminder goes out and the flow has none.
DEFAULT_REMINDER: dict[str, str] = {
    "fi": "Muistutus: ehtisitkö vielä vastata lyhyeen kyselyymme? Kiitos!",
    "sv": "Påminnelse: hinner du ännu svara på vår korta enkät? Tack!",
    "en": "Reminder: could you still answer our short survey? Thank you!",
}

# A contact who is busy answering another survey is not interrupted: try again this much later.
BUSY_RETRY = timedelta(minutes=30)


def reminder_text(rule: FollowupRule, language: str, default_language: str = "en") -> str:
    """The reminder in ``language``: the flow's own text, else the built-in one."""
    texts = rule.reminder or {}
    return (
        texts.get(language)
        or DEFAULT_REMINDER.get(language)
        or texts.get(default_language)
        or DEFAULT_REMINDER.get(default_language)
        or DEFAULT_REMINDER["en"]
    )


class FollowupRuleError(ValueError):
    """A follow-up rule that cannot be applied (bad window). Fix the flow YAML; retry won't help."""


@dataclass(frozen=True)
class SendWindow:
    """A parsed ``QuietHours``: local times and ISO weekdays (Monday=0) when sends may happen."""

    start: time
    end: time | None  # None: until midnight ("24:00")
    days: frozenset[int]

    @classmethod
    def parse(cls, window: QuietHours) -> SendWindow:
        start = _parse_clock(window.start, "start")
        if start is None:
            raise FollowupRuleError("send window start cannot be 24:00; use 00:00..23:59")
        end = _parse_clock(window.end, "end")
        if end is not None and end <= start:
            raise FollowupRuleError(
                f"send window end {window.end} must be later than start {window.start} "
                "(windows across midnight are not supported)"
            )
        days = frozenset(window.days)
        if not days:
            raise FollowupRuleError("send window has no days: list at least one weekday")
        bad = sorted(d for d in days if not 0 <= d <= 6)
        if bad:
            raise FollowupRuleError(f"send window days must be 0 (Monday) .. 6 (Sunday), got {bad}")
        return cls(start=start, end=end, days=days)

    def contains_local(self, local: datetime) -> bool:
        if local.weekday() not in self.days:
            return False
        wall = local.time().replace(tzinfo=None, fold=0)
        return wall >= self.start and (self.end is None or wall < self.end)


def _parse_clock(text: str, which: str) -> time | None:
    parts = text.strip().split(":")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise FollowupRuleError(f"send window {which} {text!r} is not a time like 09:00")
    hour, minute = int(parts[0]), int(parts[1])
    if (hour, minute) == (24, 0):
        return None
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise FollowupRuleError(f"send window {which} {text!r} is not a time between 00:00-24:00")
    return time(hour, minute)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall-clock time of an instant."""
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def local_instants(wall: datetime, zone: ZoneInfo) -> tuple[datetime, ...]:
    """The UTC instants showing the naive wall time ``wall`` in ``zone``, in order.

    One instant normally, two in a fall-back hour, and for a wall time inside a
    spring-forward gap the single instant the gap ends at (the first later wall time).
    """
    found: list[datetime] = []
    for fold in (0, 1):
        utc = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if _wall(utc, zone) == wall and utc not in found:
            found.append(utc)
    if found:
        return tuple(sorted(found))
    # In a gap: fold=1 reads it with the new offset (earlier instant, shows a wall time before
    # the gap); fold=0 with the old offset (later instant, after the gap). Bisect for the jump.
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = int(wall.replace(tzinfo=zone, fold=0).timestamp())
    if low > high:
        low, high = high, low
    while high - low > 1:  # invariant: wall(low) < wall <= wall(high)
        mid = (low + high) // 2
        if _wall(datetime.fromtimestamp(mid, UTC), zone) >= wall:
            high = mid
        else:
            low = mid
    return (datetime.fromtimestamp(high, UTC),)


def add_local(instant: datetime, duration: timedelta, zone: ZoneInfo) -> datetime:
    """``instant + duration``: whole days on the local calendar, the rest as elapsed time."""
    _require_aware(instant, "instant")
    result = instant.astimezone(UTC)
    if duration.days:
        wall = _wall(result, zone) + timedelta(days=duration.days)
        instants = local_instants(wall, zone)
        # Keep the same occurrence when both are possible (fold=1 stays fold=1).
        was_second = instant.astimezone(zone).fold == 1 and len(instants) == 2
        result = instants[1] if was_second else instants[0]
    return result + timedelta(seconds=duration.seconds, microseconds=duration.microseconds)


def in_window(instant: datetime, window: QuietHours, zone: ZoneInfo) -> bool:
    _require_aware(instant, "instant")
    return SendWindow.parse(window).contains_local(instant.astimezone(zone))


def next_send_time(earliest: datetime, window: QuietHours, zone: ZoneInfo) -> datetime:
    """The first instant at or after ``earliest`` that is inside the send window (UTC)."""
    _require_aware(earliest, "earliest")
    parsed = SendWindow.parse(window)
    earliest = earliest.astimezone(UTC)
    if parsed.contains_local(earliest.astimezone(zone)):
        return earliest
    first_day: date = _wall(earliest, zone).date()
    for offset in range(9):  # any allowed weekday is at most 7 days away (+ a DST spare)
        day = first_day + timedelta(days=offset)
        if day.weekday() not in parsed.days:
            continue
        for candidate in local_instants(datetime.combine(day, parsed.start), zone):
            if candidate >= earliest and parsed.contains_local(candidate.astimezone(zone)):
                return candidate
    raise FollowupRuleError("the send window never opens in this time zone")  # pragma: no cover


def first_send_time(rule: FollowupRule, visit_at: datetime, zone: ZoneInfo) -> datetime:
    """When the first prompt goes out: ``delay`` after the visit, moved into the window."""
    return next_send_time(add_local(visit_at, rule.delay, zone), rule.window, zone)


def expires_at(rule: FollowupRule, visit_at: datetime, zone: ZoneInfo) -> datetime:
    """After this instant nothing about this visit is sent any more."""
    return add_local(visit_at, rule.give_up_after, zone)


def reminder_time(
    rule: FollowupRule, sent_at: datetime, visit_at: datetime, zone: ZoneInfo
) -> datetime | None:
    """When to remind (if still unanswered), or None: no reminder, or it would be too late."""
    if rule.reminder_after is None:
        return None
    at = next_send_time(add_local(sent_at, rule.reminder_after, zone), rule.window, zone)
    return at if at < expires_at(rule, visit_at, zone) else None


def is_capped(rule: FollowupRule, last_surveyed_at: datetime | None, at: datetime) -> bool:
    """True when the person was surveyed less than ``frequency_cap`` before ``at``."""
    if last_surveyed_at is None:
        return False
    _require_aware(last_surveyed_at, "last_surveyed_at")
    _require_aware(at, "at")
    return at - last_surveyed_at < rule.frequency_cap


@dataclass(frozen=True)
class Send:
    """Send now."""


@dataclass(frozen=True)
class Reschedule:
    """Not sendable now (outside the window, e.g. after a clock outage): try again at ``at``."""

    at: datetime


@dataclass(frozen=True)
class Skip:
    reason: SkipReason


Decision = Send | Reschedule | Skip


def decide(
    rule: FollowupRule,
    *,
    kind: FollowupKind,
    visit_at: datetime,
    now: datetime,
    zone: ZoneInfo,
    opted_out: bool = False,
    unreachable: bool = False,
    last_surveyed_at: datetime | None = None,
    answered: bool = False,
    busy: bool = False,
) -> Decision:
    """What to do with a follow-up that has come due at ``now``.

    ``last_surveyed_at`` is the last time this person was sent a first follow-up by any flow
    of the organisation (not counting this one). Reminders are never capped: they belong to
    the survey already sent. ``busy``: the contact is in the middle of another survey right
    now; a first follow-up waits ``BUSY_RETRY`` rather than interrupting it.
    """
    _require_aware(now, "now")
    if opted_out:
        return Skip(SkipReason.OPTED_OUT)
    if unreachable:
        return Skip(SkipReason.UNREACHABLE)
    if kind is FollowupKind.REMINDER and answered:
        return Skip(SkipReason.ANSWERED)
    deadline = expires_at(rule, visit_at, zone)
    if now >= deadline:
        return Skip(SkipReason.EXPIRED)
    at = next_send_time(now, rule.window, zone)
    if at >= deadline:
        return Skip(SkipReason.EXPIRED)
    if kind is FollowupKind.FIRST and is_capped(rule, last_surveyed_at, at):
        return Skip(SkipReason.CAPPED)
    if kind is FollowupKind.FIRST and busy:
        later = next_send_time(now + BUSY_RETRY, rule.window, zone)
        return Reschedule(later) if later < deadline else Skip(SkipReason.EXPIRED)
    if at > now.astimezone(UTC):
        return Reschedule(at)
    return Send()
