"""When follow-ups go out: delay, send window, excluded days, DST, reminders, expiry, caps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.flow import FollowupRule, QuietHours
from bot.followup import (
    FollowupKind,
    FollowupRuleError,
    Reschedule,
    Send,
    Skip,
    SkipReason,
    add_local,
    decide,
    expires_at,
    first_send_time,
    in_window,
    is_capped,
    local_instants,
    next_send_time,
    reminder_text,
    reminder_time,
)

HELSINKI = ZoneInfo("Europe/Helsinki")
NEW_YORK = ZoneInfo("America/New_York")
EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)
# 2026 in Helsinki: clocks go 03:00 -> 04:00 on Sun 29 March, 04:00 -> 03:00 on Sun 25 October.
SPRING_FORWARD = datetime(2026, 3, 29)
FALL_BACK = datetime(2026, 10, 25)


def hki(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=HELSINKI, fold=fold)  # type: ignore[misc]


def local(instant: datetime, zone: ZoneInfo = HELSINKI) -> str:
    """How the citizen's phone shows the instant: '2026-03-30 Mon 09:00 +0300'."""
    return instant.astimezone(zone).strftime("%Y-%m-%d %a %H:%M %z")


@dataclass
class Clock:
    """A controllable clock: the tests move it, the code only ever receives ``now``."""

    now: datetime = field(default_factory=lambda: hki(2026, 6, 1, 8, 0))

    def advance(self, **kwargs: float) -> datetime:
        self.now = self.now + timedelta(**kwargs)
        return self.now


# --- the send window on ordinary days ------------------------------------------------------


def test_two_hours_after_a_morning_visit_is_sent_two_hours_later() -> None:
    rule = FollowupRule(delay=timedelta(hours=2))
    at = first_send_time(rule, hki(2026, 6, 2, 10, 15), HELSINKI)  # a Tuesday
    assert local(at) == "2026-06-02 Tue 12:15 +0300"
    assert at.tzinfo is UTC


def test_evening_visit_waits_for_next_morning() -> None:
    rule = FollowupRule(delay=timedelta(hours=2))
    at = first_send_time(rule, hki(2026, 6, 2, 18, 30), HELSINKI)  # 20:30 is quiet time
    assert local(at) == "2026-06-03 Wed 09:00 +0300"


@pytest.mark.parametrize(
    ("earliest", "expected"),
    [
        ((8, 59, 59), "2026-06-02 Tue 09:00 +0300"),  # just before the window opens
        ((9, 0, 0), "2026-06-02 Tue 09:00 +0300"),  # start is inclusive
        ((19, 59, 0), "2026-06-02 Tue 19:59 +0300"),  # last sendable minute
        ((20, 0, 0), "2026-06-03 Wed 09:00 +0300"),  # end is exclusive
        ((23, 59, 0), "2026-06-03 Wed 09:00 +0300"),
        ((0, 0, 0), "2026-06-02 Tue 09:00 +0300"),
    ],
)
def test_quiet_hour_boundaries(earliest: tuple[int, int, int], expected: str) -> None:
    at = next_send_time(hki(2026, 6, 2, *earliest), QuietHours(), HELSINKI)
    assert local(at)[: len(expected)] == expected
    assert in_window(at, QuietHours(), HELSINKI)


def test_saturday_evening_visit_skips_excluded_sunday() -> None:
    rule = FollowupRule(delay=timedelta(hours=2))  # default window: Mon-Sat 09-20
    at = first_send_time(rule, hki(2026, 6, 6, 19, 0), HELSINKI)  # Saturday
    assert local(at) == "2026-06-08 Mon 09:00 +0300"


def test_sunday_visit_is_sent_on_monday_morning() -> None:
    rule = FollowupRule(delay=timedelta(hours=2))
    at = first_send_time(rule, hki(2026, 6, 7, 11, 0), HELSINKI)  # Sunday noon
    assert local(at) == "2026-06-08 Mon 09:00 +0300"


def test_weekdays_only_window() -> None:
    window = QuietHours(start="10:00", end="16:00", days=(0, 1, 2, 3, 4))
    at = next_send_time(hki(2026, 6, 5, 16, 0), window, HELSINKI)  # Friday 16:00
    assert local(at) == "2026-06-08 Mon 10:00 +0300"


def test_window_until_midnight() -> None:
    window = QuietHours(start="08:00", end="24:00", days=EVERY_DAY)
    assert local(next_send_time(hki(2026, 6, 2, 23, 59), window, HELSINKI)).startswith(
        "2026-06-02 Tue 23:59"
    )


def test_window_is_applied_in_the_contacts_zone_not_the_servers() -> None:
    # A visit at 15:00 Helsinki time for a contact whose zone is New York (08:00 there).
    rule = FollowupRule(delay=timedelta(minutes=30))
    at = first_send_time(rule, hki(2026, 6, 2, 15, 0), NEW_YORK)
    assert local(at, NEW_YORK) == "2026-06-02 Tue 09:00 -0400"


@pytest.mark.parametrize(
    "window",
    [
        QuietHours(start="20:00", end="09:00"),
        QuietHours(start="9", end="20:00"),
        QuietHours(start="09:00", end="25:00"),
        QuietHours(days=()),
        QuietHours(days=(7,)),
    ],
)
def test_unusable_windows_are_refused_with_a_reason(window: QuietHours) -> None:
    with pytest.raises(FollowupRuleError):
        next_send_time(hki(2026, 6, 2, 12, 0), window, HELSINKI)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_send_time(datetime(2026, 6, 2, 12, 0), QuietHours(), HELSINKI)


# --- daylight-saving changes ------------------------------------------------------------------


def test_spring_forward_delay_is_real_elapsed_time() -> None:
    # 02:30 EET + 2 h = 05:30 EEST (the hour 03:00-04:00 does not exist that night).
    window = QuietHours(start="00:00", end="24:00", days=EVERY_DAY)
    rule = FollowupRule(delay=timedelta(hours=2), window=window)
    at = first_send_time(rule, hki(2026, 3, 29, 2, 30), HELSINKI)
    assert local(at) == "2026-03-29 Sun 05:30 +0300"
    assert at - hki(2026, 3, 29, 2, 30) == timedelta(hours=2)


def test_spring_forward_window_start_inside_the_gap_opens_when_the_gap_ends() -> None:
    window = QuietHours(start="03:30", end="20:00", days=EVERY_DAY)
    at = next_send_time(hki(2026, 3, 29, 1, 0), window, HELSINKI)
    assert local(at) == "2026-03-29 Sun 04:00 +0300"  # never a non-existent 03:30
    assert in_window(at, window, HELSINKI)
    assert not in_window(at - timedelta(seconds=1), window, HELSINKI)


def test_spring_forward_window_entirely_in_the_gap_moves_to_next_day() -> None:
    window = QuietHours(start="03:00", end="04:00", days=EVERY_DAY)
    at = next_send_time(hki(2026, 3, 29, 1, 0), window, HELSINKI)
    assert local(at) == "2026-03-30 Mon 03:00 +0300"


def test_spring_forward_morning_window_stays_at_nine_local() -> None:
    # Saturday 19:30 visit before the change, Sunday excluded: Monday 09:00 summer time.
    rule = FollowupRule(delay=timedelta(hours=2))
    at = first_send_time(rule, hki(2026, 3, 28, 19, 30), HELSINKI)
    assert local(at) == "2026-03-30 Mon 09:00 +0300"


def test_fall_back_window_start_in_repeated_hour_is_the_first_occurrence() -> None:
    window = QuietHours(start="03:30", end="20:00", days=EVERY_DAY)
    at = next_send_time(hki(2026, 10, 25, 1, 0), window, HELSINKI)
    assert local(at) == "2026-10-25 Sun 03:30 +0300"  # summer time, the first 03:30
    assert at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_fall_back_second_pass_of_the_hour_does_not_schedule_a_second_send() -> None:
    # Sent at the first 03:30; the clock then shows 03:30 again an hour later. Computing the
    # time from just after the send gives that very instant or later — not a second 03:30
    # before it, and the follow-up row holds one instant anyway.
    window = QuietHours(start="03:30", end="03:45", days=EVERY_DAY)
    first = next_send_time(hki(2026, 10, 25, 1, 0), window, HELSINKI)
    again = next_send_time(first + timedelta(minutes=15), window, HELSINKI)
    assert again == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # the repeated 03:30 (EET)
    assert again - first == timedelta(hours=1)
    # ...and when the earliest time is inside the second pass, it is sent then, once.
    inside = hki(2026, 10, 25, 3, 35, fold=1)
    assert next_send_time(inside, window, HELSINKI) == inside.astimezone(UTC)


def test_fall_back_earliest_in_second_pass_before_window_start() -> None:
    window = QuietHours(start="03:30", end="20:00", days=EVERY_DAY)
    earliest = hki(2026, 10, 25, 3, 10, fold=1)  # 01:10 UTC, after the first 03:30 passed
    at = next_send_time(earliest, window, HELSINKI)
    assert at == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert local(at) == "2026-10-25 Sun 03:30 +0200"


def test_fall_back_window_end_is_read_on_the_wall_clock() -> None:
    window = QuietHours(start="09:00", end="20:00", days=EVERY_DAY)
    # 19:30 on the fall-back Sunday is 17:30 UTC; 20:00 local is 18:00 UTC.
    assert in_window(datetime(2026, 10, 25, 17, 59, tzinfo=UTC), window, HELSINKI)
    assert not in_window(datetime(2026, 10, 25, 18, 0, tzinfo=UTC), window, HELSINKI)


def test_whole_day_durations_keep_the_local_hour_across_dst() -> None:
    saturday_ten = hki(2026, 3, 28, 10, 0)  # +0200
    assert local(add_local(saturday_ten, timedelta(days=1), HELSINKI)) == (
        "2026-03-29 Sun 10:00 +0300"
    )
    assert add_local(saturday_ten, timedelta(days=1), HELSINKI) - saturday_ten == timedelta(
        hours=23
    )
    oct_ten = hki(2026, 10, 24, 10, 0)
    assert local(add_local(oct_ten, timedelta(days=1, hours=2), HELSINKI)) == (
        "2026-10-25 Sun 12:00 +0200"
    )


def test_reminder_a_day_later_is_at_the_same_local_hour_across_fall_back() -> None:
    window = QuietHours(days=EVERY_DAY)
    rule = FollowupRule(window=window, reminder_after=timedelta(days=1))
    visit = hki(2026, 10, 24, 9, 0)
    sent = first_send_time(rule, visit, HELSINKI)
    assert local(sent) == "2026-10-24 Sat 11:00 +0300"
    reminder = reminder_time(rule, sent, visit, HELSINKI)
    assert reminder is not None
    assert local(reminder) == "2026-10-25 Sun 11:00 +0200"


def test_local_instants_lists_both_occurrences_and_gap_end() -> None:
    assert local_instants(FALL_BACK.replace(hour=3, minute=30), HELSINKI) == (
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    )
    assert local_instants(SPRING_FORWARD.replace(hour=3, minute=30), HELSINKI) == (
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
    )


def test_every_minute_across_both_dst_nights_is_scheduled_inside_the_window() -> None:
    window = QuietHours(start="03:15", end="03:45", days=EVERY_DAY)
    for night in (SPRING_FORWARD, FALL_BACK):
        start = night.replace(tzinfo=HELSINKI) - timedelta(hours=3)
        for minute in range(0, 8 * 60, 7):
            earliest = start + timedelta(minutes=minute)
            at = next_send_time(earliest, window, HELSINKI)
            assert at >= earliest
            wall = at.astimezone(HELSINKI)
            assert (wall.hour, wall.minute) >= (3, 15) or wall.hour == 4, local(at)
            assert in_window(at, window, HELSINKI)
            # Nothing sendable was skipped: one second earlier is outside or before earliest.
            before = at - timedelta(seconds=1)
            assert before < earliest or not in_window(before, window, HELSINKI)


# --- reminders, expiry, caps ------------------------------------------------------------------


def test_no_reminder_unless_configured() -> None:
    rule = FollowupRule()
    assert reminder_time(rule, hki(2026, 6, 2, 12, 0), hki(2026, 6, 2, 10, 0), HELSINKI) is None


def test_reminder_is_moved_into_the_window() -> None:
    rule = FollowupRule(reminder_after=timedelta(hours=24))
    visit = hki(2026, 6, 5, 17, 0)  # Friday
    sent = first_send_time(rule, visit, HELSINKI)
    assert local(sent) == "2026-06-05 Fri 19:00 +0300"
    reminder = reminder_time(rule, sent, visit, HELSINKI)
    assert reminder is not None and local(reminder) == "2026-06-06 Sat 19:00 +0300"


def test_reminder_after_expiry_is_dropped() -> None:
    rule = FollowupRule(reminder_after=timedelta(hours=48), give_up_after=timedelta(days=2))
    visit = hki(2026, 6, 2, 10, 0)
    sent = first_send_time(rule, visit, HELSINKI)
    assert reminder_time(rule, sent, visit, HELSINKI) is None


def test_expiry_counts_from_the_visit() -> None:
    rule = FollowupRule(give_up_after=timedelta(days=3))
    assert local(expires_at(rule, hki(2026, 3, 27, 10, 0), HELSINKI)) == (
        "2026-03-30 Mon 10:00 +0300"
    )


def test_frequency_cap() -> None:
    rule = FollowupRule(frequency_cap=timedelta(days=30))
    at = hki(2026, 6, 30, 12, 0)
    assert not is_capped(rule, None, at)
    assert is_capped(rule, at - timedelta(days=29, hours=23), at)
    assert not is_capped(rule, at - timedelta(days=30), at)


# --- the decision when a follow-up comes due --------------------------------------------------


def test_due_followup_is_sent_when_inside_the_window() -> None:
    clock = Clock(now=hki(2026, 6, 2, 12, 0))
    rule = FollowupRule()
    decision = decide(
        rule, kind=FollowupKind.FIRST, visit_at=hki(2026, 6, 2, 10, 0), now=clock.now, zone=HELSINKI
    )
    assert decision == Send()


def test_clock_outage_past_the_window_reschedules_instead_of_sending_at_night() -> None:
    rule = FollowupRule()
    visit = hki(2026, 6, 2, 17, 0)
    clock = Clock(now=first_send_time(rule, visit, HELSINKI))  # due 19:00
    clock.advance(hours=3)  # the clock process was down; it is now 22:00
    decision = decide(rule, kind=FollowupKind.FIRST, visit_at=visit, now=clock.now, zone=HELSINKI)
    assert isinstance(decision, Reschedule)
    assert local(decision.at) == "2026-06-03 Wed 09:00 +0300"
    clock.now = decision.at
    assert decide(rule, kind=FollowupKind.FIRST, visit_at=visit, now=clock.now, zone=HELSINKI) == (
        Send()
    )


def test_outage_past_expiry_skips_as_expired() -> None:
    rule = FollowupRule(give_up_after=timedelta(days=1))
    visit = hki(2026, 6, 2, 10, 0)
    clock = Clock(now=visit)
    clock.advance(days=1, seconds=1)
    decision = decide(rule, kind=FollowupKind.FIRST, visit_at=visit, now=clock.now, zone=HELSINKI)
    assert decision == Skip(SkipReason.EXPIRED)


def test_next_window_after_expiry_skips_as_expired() -> None:
    rule = FollowupRule(give_up_after=timedelta(hours=20))
    visit = hki(2026, 6, 6, 19, 0)  # Saturday evening: next window is Monday, too late
    clock = Clock(now=hki(2026, 6, 6, 21, 0))
    decision = decide(rule, kind=FollowupKind.FIRST, visit_at=visit, now=clock.now, zone=HELSINKI)
    assert decision == Skip(SkipReason.EXPIRED)


def test_opted_out_wins_over_everything() -> None:
    decision = decide(
        FollowupRule(),
        kind=FollowupKind.FIRST,
        visit_at=hki(2026, 6, 2, 10, 0),
        now=hki(2026, 6, 2, 12, 0),
        zone=HELSINKI,
        opted_out=True,
        last_surveyed_at=hki(2026, 6, 1, 10, 0),
    )
    assert decision == Skip(SkipReason.OPTED_OUT)


def test_recently_surveyed_person_is_capped_but_reminder_is_not() -> None:
    rule = FollowupRule(frequency_cap=timedelta(days=30))
    args = {
        "visit_at": hki(2026, 6, 2, 10, 0),
        "now": hki(2026, 6, 2, 12, 0),
        "zone": HELSINKI,
        "last_surveyed_at": hki(2026, 5, 20, 12, 0),
    }
    assert decide(rule, kind=FollowupKind.FIRST, **args) == Skip(SkipReason.CAPPED)  # type: ignore[arg-type]
    assert decide(rule, kind=FollowupKind.REMINDER, **args) == Send()  # type: ignore[arg-type]


def test_reminder_not_needed_once_answered() -> None:
    decision = decide(
        FollowupRule(reminder_after=timedelta(hours=24)),
        kind=FollowupKind.REMINDER,
        visit_at=hki(2026, 6, 2, 10, 0),
        now=hki(2026, 6, 3, 12, 0),
        zone=HELSINKI,
        answered=True,
    )
    assert decision == Skip(SkipReason.ANSWERED)


def test_unreachable_contact_is_skipped() -> None:
    decision = decide(
        FollowupRule(),
        kind=FollowupKind.FIRST,
        visit_at=hki(2026, 6, 2, 10, 0),
        now=hki(2026, 6, 2, 12, 0),
        zone=HELSINKI,
        unreachable=True,
    )
    assert decision == Skip(SkipReason.UNREACHABLE)


def test_busy_contact_is_not_interrupted_but_asked_later() -> None:
    rule = FollowupRule()
    visit = hki(2026, 6, 2, 10, 0)
    decision = decide(
        rule, kind=FollowupKind.FIRST, visit_at=visit, now=hki(2026, 6, 2, 12, 0),
        zone=HELSINKI, busy=True,
    )  # fmt: skip
    assert decision == Reschedule(hki(2026, 6, 2, 12, 30).astimezone(UTC))
    late = decide(
        rule, kind=FollowupKind.FIRST, visit_at=visit, now=hki(2026, 6, 2, 19, 45),
        zone=HELSINKI, busy=True,
    )  # fmt: skip
    assert isinstance(late, Reschedule) and local(late.at) == "2026-06-03 Wed 09:00 +0300"


def test_reminder_text_falls_back_to_built_in_languages() -> None:
    rule = FollowupRule(reminder={"fi": "Muistathan kyselyn", "en": "Remember the survey"})
    assert reminder_text(rule, "fi") == "Muistathan kyselyn"
    assert reminder_text(rule, "sv").startswith("Påminnelse")
    assert reminder_text(FollowupRule(), "en").startswith("Reminder")
    assert reminder_text(rule, "de", "fi") == "Muistathan kyselyn"
