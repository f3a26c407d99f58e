"""The clock: due follow-ups start runs exactly once, at the right local time.

In-process tests drive ``FollowupDispatcher`` with a controllable clock on SQLite and
PostgreSQL; the last tests run real ``palaute clock`` OS processes against PostgreSQL
(two at once; one killed mid-batch and restarted).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from bot.catalogue import Catalogue
from bot.messages import Inbound
from service.conversations import ConversationService
from service.followups import FollowupDispatcher
from service.visits import Intake, Visit, store_visits
from storage.contacts import ContactStore
from storage.db import make_engine, transaction
from tests.service.followup_support import (
    SECRET,
    VISIT_FLOW,
    catalogue,
    followup_rows,
    outbox_texts,
)

PROMPT_FI = "Miten käyntisi sujui? Vastaa 1-5."
REMINDER_FI = "Muistutus: kerrotko vielä, miten käyntisi sujui?"


def hki(*args: int) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo("Europe/Helsinki")).astimezone(UTC)  # type: ignore[misc]


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    engine: Engine
    flows: Catalogue
    conversations: ConversationService
    clock: Clock

    def visit(self, external_id: str, visit_at: datetime, phone: str, **extra: Any) -> Visit:
        intake = Intake(flows=self.flows, organisation="Kaarina")
        raw = {"external_id": external_id, "visit_at": visit_at.isoformat(), "phone": phone}
        outcome = intake.validate({**raw, **extra}, source="his", now=self.clock.now)
        assert isinstance(outcome, Visit), outcome
        store_visits(self.engine, ContactStore(SECRET), [outcome], self.clock.now)
        return outcome

    def dispatcher(self, worker_id: str = "clock-a", **kwargs: Any) -> FollowupDispatcher:
        return FollowupDispatcher(
            self.engine, self.conversations, worker_id=worker_id, clock=self.clock, **kwargs
        )

    def reply(self, phone: str, text: str) -> None:
        self.conversations.handle(Inbound("sms", phone, text), self.clock.now)


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    engine = make_engine(db_url)
    flows = catalogue(tmp_path / "flows")
    conversations = ConversationService(engine, flows, address_key_secret=SECRET)
    yield World(engine, flows, conversations, Clock(hki(2026, 6, 2, 10, 0)))
    engine.dispose()


PHONE = "+358401234567"


def test_prompt_is_queued_when_due_and_not_before(world: World) -> None:
    world.visit("A-1", hki(2026, 6, 2, 10, 15), "040 123 4567", language="fi")
    world.clock.now = hki(2026, 6, 2, 12, 14)
    assert world.dispatcher().run_once().claimed == 0
    assert outbox_texts(world.engine) == []

    world.clock.now = hki(2026, 6, 2, 12, 15)
    report = world.dispatcher().run_once()
    assert (report.claimed, report.sent) == (1, 1)
    assert outbox_texts(world.engine) == [(PHONE, "queued", PROMPT_FI)]
    first, reminder = followup_rows(world.engine)
    assert (first["status"], first["sent_at"]) == ("sent", hki(2026, 6, 2, 12, 15))
    assert first["run_id"] is not None
    assert (reminder["kind"], reminder["status"]) == ("reminder", "scheduled")
    assert reminder["due_at"] == hki(2026, 6, 3, 12, 15)
    assert world.dispatcher().run_once().claimed == 0  # nothing twice


def test_unanswered_survey_gets_one_reminder_with_the_question(world: World) -> None:
    world.visit("A-1", hki(2026, 6, 2, 10, 15), PHONE, language="fi")
    world.clock.now = hki(2026, 6, 2, 12, 15)
    world.dispatcher().run_once()
    world.clock.now = hki(2026, 6, 3, 12, 15)
    report = world.dispatcher().run_once()
    assert report.reminded == 1
    assert [t for _, _, t in outbox_texts(world.engine)] == [PROMPT_FI, REMINDER_FI, PROMPT_FI]
    world.clock.now = hki(2026, 6, 5, 12, 0)
    assert world.dispatcher().run_once().claimed == 0  # at most one reminder


def test_no_reminder_after_an_answer(world: World) -> None:
    world.visit("A-1", hki(2026, 6, 2, 10, 15), PHONE, language="fi")
    world.clock.now = hki(2026, 6, 2, 12, 15)
    world.dispatcher().run_once()
    world.clock.now = hki(2026, 6, 2, 12, 20)
    world.reply(PHONE, "4")
    world.clock.now = hki(2026, 6, 3, 12, 15)
    report = world.dispatcher().run_once()
    assert report.skipped == {"answered": 1}
    assert REMINDER_FI not in [t for _, _, t in outbox_texts(world.engine)]


def test_opted_out_person_gets_nothing(world: World) -> None:
    world.reply(PHONE, "STOP")
    sent_before = len(outbox_texts(world.engine))
    world.visit("A-1", hki(2026, 6, 2, 10, 15), PHONE)
    world.clock.now = hki(2026, 6, 2, 12, 15)
    report = world.dispatcher().run_once()
    assert report.skipped == {"opted_out": 1}
    assert len(outbox_texts(world.engine)) == sent_before
    assert followup_rows(world.engine)[0]["skip_reason"] == "opted_out"


def test_person_surveyed_recently_is_capped(world: World) -> None:
    world.visit("A-1", hki(2026, 6, 2, 10, 15), PHONE)
    world.clock.now = hki(2026, 6, 2, 12, 15)
    world.dispatcher().run_once()
    world.reply(PHONE, "5")
    world.clock.now = hki(2026, 6, 20, 9, 0)
    world.visit("A-2", hki(2026, 6, 20, 9, 0), PHONE)  # 18 days later: within 30 days
    world.clock.now = hki(2026, 6, 20, 11, 0)
    report = world.dispatcher().run_once()
    assert report.skipped == {"capped": 1, "answered": 1}  # (A-1's reminder: not needed)
    world.clock.now = hki(2026, 7, 3, 9, 0)
    world.visit("A-3", hki(2026, 7, 3, 9, 0), PHONE)  # 31 days after the first survey
    world.clock.now = hki(2026, 7, 3, 11, 0)
    assert world.dispatcher().run_once().sent == 1


def test_clock_back_after_an_outage_waits_for_the_morning(world: World) -> None:
    world.visit("A-1", hki(2026, 6, 2, 17, 0), PHONE)  # due 19:00
    world.clock.now = hki(2026, 6, 2, 22, 30)  # the clock was down all evening
    report = world.dispatcher().run_once()
    assert (report.claimed, report.rescheduled, report.sent) == (1, 1, 0)
    assert outbox_texts(world.engine) == []
    assert followup_rows(world.engine)[0]["due_at"] == hki(2026, 6, 3, 9, 0)
    world.clock.now = hki(2026, 6, 3, 9, 0)
    assert world.dispatcher().run_once().sent == 1


def test_expired_followups_are_skipped_not_sent(world: World) -> None:
    world.visit("A-1", hki(2026, 6, 2, 10, 0), PHONE)
    world.clock.now = hki(2026, 6, 5, 10, 1)  # give_up_after 3d
    assert world.dispatcher().run_once().skipped == {"expired": 1}
    assert outbox_texts(world.engine) == []


def test_killed_clock_loses_nothing_and_duplicates_nothing(world: World) -> None:
    for i in range(5):
        world.visit(f"A-{i}", hki(2026, 6, 2, 10, 0), f"+35840{i:07d}")
    world.clock.now = hki(2026, 6, 2, 12, 0)

    class Killed(BaseException):
        pass

    def die(_chunk: Any) -> None:
        raise Killed  # after the first chunk (two follow-ups) was committed

    with pytest.raises(Killed):
        world.dispatcher("clock-a", chunk=2, after_chunk=die).run_once(limit=5)
    assert len(outbox_texts(world.engine)) == 2
    # Another clock right away: the dead clock's lease still holds the other three.
    assert world.dispatcher("clock-b").run_once().claimed == 0
    world.clock.now += timedelta(minutes=3)  # the lease (2 min) ran out
    report = world.dispatcher("clock-b").run_once()
    assert (report.claimed, report.sent) == (3, 3)
    texts = outbox_texts(world.engine)
    assert len(texts) == 5 and len({address for address, _, _ in texts}) == 5


def test_stalled_clock_whose_lease_was_taken_over_sends_nothing(world: World) -> None:
    world.visit("A-1", hki(2026, 6, 2, 10, 0), PHONE)
    world.clock.now = hki(2026, 6, 2, 12, 0)
    slow = world.dispatcher("clock-slow")
    with transaction(world.engine) as session:
        from storage import followups

        [claim] = followups.claim_due(
            session, world.clock.now, 10, "clock-slow", timedelta(minutes=2)
        )
    world.clock.now += timedelta(minutes=5)
    assert world.dispatcher("clock-b").run_once().sent == 1
    report = slow._handle_chunk([claim])  # the stalled clock wakes up and carries on
    assert report.lost == 1 and report.sent == 0
    assert len(outbox_texts(world.engine)) == 1


def test_batches_respect_the_limit_and_oldest_go_first(world: World) -> None:
    for i in range(7):
        world.visit(f"A-{i}", hki(2026, 6, 2, 9, 0) + timedelta(minutes=i), f"+35840{i:07d}")
    world.clock.now = hki(2026, 6, 2, 13, 0)
    dispatcher = world.dispatcher()
    assert dispatcher.run_once(limit=3).sent == 3
    assert dispatcher.run_until_idle(limit=3).sent == 4
    assert [a for a, _, _ in outbox_texts(world.engine)] == [f"+35840{i:07d}" for i in range(7)]


# --- real processes on PostgreSQL ----------------------------------------------------------

ALWAYS_OPEN = VISIT_FLOW.replace(
    'window: {start: "09:00", end: "20:00", days: [mon, tue, wed, thu, fri, sat]}',
    'window: {start: "00:00", end: "24:00", days: [mon, tue, wed, thu, fri, sat, sun]}',
).replace("  reminder_after: 24h\n", "")


def _process_env(db_url: str, flows: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        FLOWS_DIR=str(flows),
        ADDRESS_KEY_SECRET=SECRET,
        ORGANISATION_NAME="Kaarina",
        CLOCK_BATCH_SIZE="25",
        CLOCK_INTERVAL_SECONDS="0.2",
        LOG_LEVEL="WARNING",
        TWILIO_ACCOUNT_SID="",
        TELEGRAM_BOT_TOKEN="",
    )
    env.update(extra)
    return env


def _schedule_due_now(db_url: str, flows_dir: Path, count: int) -> None:
    flows_dir.mkdir()
    (flows_dir / "visit-survey.yaml").write_text(ALWAYS_OPEN, encoding="utf-8")
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    intake = Intake(flows=Catalogue.load(flows_dir), organisation="Kaarina")
    visits = []
    for i in range(count):
        raw = {
            "external_id": f"P-{i}",
            "visit_at": (now - timedelta(hours=3)).isoformat(),
            "phone": f"+35850{i:07d}",
        }
        outcome = intake.validate(raw, source="his", now=now)
        assert isinstance(outcome, Visit)
        visits.append(outcome)
    store_visits(engine, ContactStore(SECRET), visits, now)
    engine.dispose()


def _counts(db_url: str) -> dict[str, Any]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            q = conn.exec_driver_sql
            return {
                "statuses": dict(
                    q("SELECT status, count(*) FROM followups GROUP BY status").all()  # type: ignore[arg-type]
                ),
                "runs": q("SELECT count(*) FROM flow_runs").scalar_one(),
                "prompts": q("SELECT count(*) FROM messages WHERE direction = 'out'").scalar_one(),
                "people": q(
                    "SELECT count(DISTINCT contact_id) FROM messages WHERE direction = 'out'"
                ).scalar_one(),
            }
    finally:
        engine.dispose()


def _clock(env: dict[str, str], output: Path, *args: str) -> subprocess.Popen[bytes]:
    """A `palaute clock` process writing to a file (a full pipe would stall it)."""
    with output.open("wb") as sink:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "palaute"), "clock", *args],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.parametrize("db_backend", ["postgres"], indirect=True)
def test_two_clock_processes_send_each_followup_exactly_once(db_url: str, tmp_path: Path) -> None:
    count = 2000  # enough work that both processes start before it is all done
    _schedule_due_now(db_url, tmp_path / "flows", count)
    env = _process_env(db_url, tmp_path / "flows", CLOCK_BATCH_SIZE="10")
    logs = [tmp_path / f"clock-{n}.log" for n in (1, 2)]
    clocks = [_clock(env, log, "--once", "--worker-id", f"proc-{n}") for n, log in enumerate(logs)]
    for clock in clocks:
        clock.wait(timeout=100)
    outputs = [log.read_text() for log in logs]
    for clock, out in zip(clocks, outputs, strict=True):
        assert clock.returncode == 0, out
    counts = _counts(db_url)
    assert counts == {"statuses": {"sent": count}, "runs": count, "prompts": count, "people": count}
    claimed = [int(out.split("follow-ups: claimed ")[1].split(",")[0]) for out in outputs]
    assert sum(claimed) == count
    assert all(n > 0 for n in claimed), claimed  # both processes did part of the work


@pytest.mark.parametrize("db_backend", ["postgres"], indirect=True)
def test_clock_process_killed_mid_batch_resumes_after_its_lease(
    db_url: str, tmp_path: Path
) -> None:
    count = 1000
    _schedule_due_now(db_url, tmp_path / "flows", count)
    # One claim of everything, handled a chunk (100) per transaction: from the first
    # chunk's commit on, the clock holds claims for several more transactions, time enough
    # to kill it while it does (between two claims it would hold nothing to lose).
    env = _process_env(
        db_url, tmp_path / "flows", CLOCK_LEASE_SECONDS="3", CLOCK_BATCH_SIZE=str(count)
    )
    first = _clock(env, tmp_path / "doomed.log", "--worker-id", "doomed")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # Kill it mid-batch: some follow-ups sent, others claimed and not yet sent (between
        # two batches it holds nothing, and the test would prove nothing).
        statuses = _counts(db_url)["statuses"]
        if statuses.get("sent", 0) >= 20 and statuses.get("claimed", 0) > 0:
            break
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGKILL)  # no chance to give its claims back
    first.wait(timeout=10)
    after_kill = _counts(db_url)
    assert 0 < after_kill["statuses"].get("sent", 0) < count, after_kill
    assert after_kill["statuses"].get("claimed", 0) > 0  # it died holding a batch

    second = _clock(env, tmp_path / "survivor.log", "--worker-id", "survivor")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if _counts(db_url)["statuses"].get("sent", 0) == count:
            break
        time.sleep(0.2)
    second.send_signal(signal.SIGTERM)
    second.wait(timeout=30)
    assert second.returncode == 0, (tmp_path / "survivor.log").read_text()
    counts = _counts(db_url)
    assert counts == {"statuses": {"sent": count}, "runs": count, "prompts": count, "people": count}


def test_staff_see_sent_skipped_started_and_completed(world: World) -> None:
    from storage import funnel as funnel_store

    world.reply("+358400000009", "STOP")
    for i in range(4):
        world.visit(f"A-{i}", hki(2026, 6, 2, 10, 0), f"+35840{i:07d}")
    world.visit("A-9", hki(2026, 6, 2, 10, 0), "+358400000009")
    world.visit("A-X", hki(2026, 6, 2, 10, 0), "12")  # invalid number
    world.clock.now = hki(2026, 6, 2, 12, 0)
    world.dispatcher().run_once()
    world.reply("+358400000000", "5")  # answers the only question: completed
    world.reply("+358400000001", "kiva")  # not a number: no answer recorded, re-asked
    with transaction(world.engine) as session:
        [row] = funnel_store.funnel(session, "Kaarina")
    assert row == funnel_store.FlowFunnel(
        flow_id="visit-survey",
        visits=6,
        pending=0,
        sent=4,
        skipped={"invalid_number": 1, "opted_out": 1},
        delivered=0,  # no delivery receipts from the provider in this test
        started=1,
        completed=1,
        reminders_sent=0,
    )


# --- one chunk, many people (the batch path) -------------------------------------------------


def _by_visit(engine: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["external_id"], r["kind"]): r for r in followup_rows(engine)}


def _runs(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT contact_id, status FROM flow_runs ORDER BY id").all()
    return [(int(r[0]), str(r[1])) for r in rows]


def test_one_chunk_decides_every_followup_as_if_one_at_a_time(world: World) -> None:
    world.reply("+358400000009", "STOP")
    sent_before = len(outbox_texts(world.engine))
    for i in range(3):
        world.visit(f"B-{i}", hki(2026, 6, 2, 10, 0), f"+35840{i:07d}", language="fi")
    world.visit("B-9", hki(2026, 6, 2, 10, 0), "+358400000009")  # opted out
    world.visit("B-0b", hki(2026, 6, 2, 10, 5), "+358400000000")  # B-0's person again
    world.visit("B-old", hki(2026, 5, 30, 12, 0), "+358400000005")  # gives up at 12:00
    world.clock.now = hki(2026, 6, 2, 12, 30)
    report = world.dispatcher().run_once()  # one claim, one chunk
    assert (report.claimed, report.sent) == (6, 3)
    assert report.skipped == {"opted_out": 1, "capped": 1, "expired": 1}
    rows = _by_visit(world.engine)
    firsts = {key[0]: r for key, r in rows.items() if key[1] == "first"}
    assert {visit: (r["status"], r["skip_reason"]) for visit, r in firsts.items()} == {
        "B-0": ("sent", None),
        "B-1": ("sent", None),
        "B-2": ("sent", None),
        "B-9": ("skipped", "opted_out"),
        "B-0b": ("skipped", "capped"),  # the second visit saw the first one's survey
        "B-old": ("skipped", "expired"),
    }
    # One run and one prompt per person sent to, none to the others; reminders scheduled.
    texts = outbox_texts(world.engine)[sent_before:]
    assert sorted(texts) == [(f"+35840{i:07d}", "queued", PROMPT_FI) for i in range(3)]
    assert len({r["run_id"] for key, r in rows.items() if r["status"] == "sent"}) == 3
    reminders = [r for key, r in rows.items() if key[1] == "reminder"]
    assert len(reminders) == 3 and {r["status"] for r in reminders} == {"scheduled"}
    assert {r["run_id"] for r in reminders} == {
        rows[(f"B-{i}", "first")]["run_id"] for i in range(3)
    }
    assert world.dispatcher().run_once().claimed == 0  # nothing twice


def _visit_of(world: World, organisation: str, external_id: str, at: datetime, phone: str) -> None:
    """A visit to another organisation (its follow-ups are not capped by Kaarina's)."""
    intake = Intake(flows=world.flows, organisation=organisation)
    raw = {"external_id": external_id, "visit_at": at.isoformat(), "phone": phone}
    outcome = intake.validate(raw, source="his", now=world.clock.now)
    assert isinstance(outcome, Visit), outcome
    store_visits(world.engine, ContactStore(SECRET), [outcome], world.clock.now)


def test_a_second_visit_in_the_same_chunk_sees_the_survey_just_started(world: World) -> None:
    world.visit("C-1", hki(2026, 6, 2, 10, 0), PHONE)
    _visit_of(world, "Turku", "C-2", hki(2026, 6, 2, 10, 1), PHONE)  # not capped: Turku
    world.visit("C-3", hki(2026, 6, 2, 10, 2), "+358400000003")
    world.clock.now = hki(2026, 6, 2, 12, 30)
    report = world.dispatcher().run_once()
    # C-2 is decided after C-1's run started (in this very transaction): the person is busy
    # in it, so C-2 waits instead of replacing the survey that was just sent.
    assert (report.claimed, report.sent, report.rescheduled) == (3, 2, 1)
    rows = _by_visit(world.engine)
    assert rows[("C-2", "first")]["status"] == "scheduled"
    assert rows[("C-2", "first")]["due_at"] > world.clock.now
    assert [a for a, _, _ in outbox_texts(world.engine)] == [PHONE, "+358400000003"]


def test_a_chunk_with_a_person_still_in_an_older_survey(world: World) -> None:
    world.visit("D-1", hki(2026, 6, 2, 10, 0), PHONE)
    world.clock.now = hki(2026, 6, 2, 12, 0)
    assert world.dispatcher().run_once().sent == 1
    # An hour later (not busy any more) a new visit of that person comes due together with
    # other people's: the old survey is closed and the new one started, in the same chunk.
    _visit_of(world, "Turku", "D-2", hki(2026, 6, 2, 11, 0), PHONE)
    for i in range(3):
        world.visit(f"D-x{i}", hki(2026, 6, 2, 11, 0), f"+35840{i + 1:07d}")
    world.clock.now = hki(2026, 6, 2, 13, 0)
    report = world.dispatcher().run_once()
    assert (report.claimed, report.sent) == (4, 4)
    runs = _runs(world.engine)
    assert len(runs) == 5
    assert sorted(status for _, status in runs).count("active") == 4
    person = [status for contact_id, status in runs if contact_id == runs[0][0]]
    assert person[0] != "active" and person[1] == "active"  # closed, then the new one
    texts = outbox_texts(world.engine)
    assert [a for a, _, _ in texts].count(PHONE) == 2
    assert len(texts) == 5


def test_reminders_of_one_chunk_each_decided_on_their_own_run(world: World) -> None:
    phones = [f"+35840{i:07d}" for i in range(4)]
    for i, phone in enumerate(phones):
        world.visit(f"R-{i}", hki(2026, 6, 2, 10, 15), phone, language="fi")
    world.clock.now = hki(2026, 6, 2, 12, 15)
    assert world.dispatcher().run_once().sent == 4
    world.clock.now = hki(2026, 6, 2, 12, 20)
    world.reply(phones[0], "4")  # answered: no reminder
    world.reply(phones[1], "STOP")  # opted out: nothing more
    before = outbox_texts(world.engine)
    world.clock.now = hki(2026, 6, 3, 12, 15)
    report = world.dispatcher().run_once()
    assert report.reminded == 2
    assert report.skipped == {"answered": 1, "opted_out": 1}
    new = outbox_texts(world.engine)[len(before) :]
    for phone in phones[2:]:  # the reminder, then the question again, in order
        assert [t for a, _, t in new if a == phone] == [REMINDER_FI, PROMPT_FI]
    assert {a for a, _, _ in new} == set(phones[2:])
    rows = _by_visit(world.engine)
    assert rows[("R-2", "reminder")]["status"] == "sent"
    assert rows[("R-2", "reminder")]["run_id"] == rows[("R-2", "first")]["run_id"]
    assert rows[("R-0", "reminder")]["skip_reason"] == "answered"
