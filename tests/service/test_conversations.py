"""The conversation service against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlmodel import Session

from bot.catalogue import Catalogue
from bot.messages import OutgoingKind
from bot.run import RunStatus
from service.conversations import ConversationService, StartRequest
from storage import outbox, runs
from storage.contacts import lock_many
from storage.db import make_engine, transaction
from storage.errors import RetryableStorageError
from storage.shapes import Direction, MessageStatus
from tests.storage.support import NOW, SURVEY_YAML, catalogue_in, make_service, sms

PHONE = "+358401234567"


@pytest.fixture
def catalogue(tmp_path: Path) -> Catalogue:
    return catalogue_in(tmp_path / "flows")


@pytest.fixture
def service(engine: Engine, catalogue: Catalogue) -> ConversationService:
    return make_service(engine, catalogue)


def rows(engine: Engine, query: str, **params: object) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text(query), params))


def drive(
    service: ConversationService, address: str, texts: list[str], *, start_minute: int = 0
) -> list[list[str]]:
    """Send each text as its own SMS; return the texts of the replies to each."""
    replies = []
    for index, text in enumerate(texts):
        result = service.handle(
            sms(address, text, provider_id=f"SM{address}-{start_minute + index}"),
            NOW + timedelta(minutes=start_minute + index),
        )
        replies.append([message.text for message in result.replies])
    return replies


def test_a_full_survey_is_stored(service: ConversationService, engine: Engine) -> None:
    replies = drive(service, PHONE, ["PALAUTE", "2", "Jono oli liian pitkä tänään", "9"])

    assert replies == [
        ["Miten onnistuimme? Vastaa 1-5."],
        ["Mikä meni pieleen?"],
        ["Suosittelisitko meitä? 0-10"],
        ["Kiitos!"],
    ]
    answers = rows(
        engine,
        "SELECT step_id, value_int, value_text, raw_text, language, service_point, skipped, "
        "truncated, flow_id FROM answers ORDER BY answered_at",
    )
    assert [(a.step_id, a.value_int, (a.value_text or "").strip()) for a in answers] == [
        ("overall", 2, ""),
        ("wrong", None, "Jono oli liian pitkä"),  # max_length 20: cut and flagged
        ("recommend", 9, ""),
    ]
    assert [bool(a.truncated) for a in answers] == [False, True, False]
    assert answers[1].raw_text == "Jono oli liian pitkä tänään"
    assert {(a.language, a.service_point, a.flow_id) for a in answers} == {
        ("fi", "test-library", "survey")
    }

    (run,) = rows(engine, "SELECT id, status, completed_at, flow_version, state FROM flow_runs")
    assert run.status == "completed"
    assert run.completed_at is not None
    (version,) = rows(engine, "SELECT flow_id, version, source FROM flow_versions")
    assert (version.flow_id, version.version) == ("survey", run.flow_version)
    assert version.source == SURVEY_YAML

    log = rows(engine, "SELECT direction, status, text, run_id, reply_to FROM messages ORDER BY id")
    assert [(m.direction, m.status) for m in log] == [("in", "received"), ("out", "inline")] * 4
    assert {m.run_id for m in log} == {run.id}
    inbound_ids = [m for m in rows(engine, "SELECT id FROM messages WHERE direction = 'in'")]
    assert [m.reply_to for m in log if m.direction == "out"] == [r.id for r in inbound_ids]

    (contact,) = rows(engine, "SELECT channel, address, address_key, language FROM contacts")
    assert (contact.channel, contact.address, contact.language) == ("sms", PHONE, "fi")
    assert PHONE not in contact.address_key


def test_transcript_shows_the_log_and_the_latest_run(service: ConversationService) -> None:
    drive(service, PHONE, ["FEEDBACK", "5"])
    transcript = service.transcript("sms", PHONE)

    assert [(m.direction, m.text) for m in transcript.messages] == [
        (Direction.IN, "FEEDBACK"),
        (Direction.OUT, "How did we do? Reply 1-5."),
        (Direction.IN, "5"),
        (Direction.OUT, "What did you like?"),
    ]
    assert transcript.messages[1].language == "en"
    assert transcript.run is not None
    assert transcript.run.status == "active"
    assert transcript.run.current_step == "liked"
    assert [(a.step_id, a.value) for a in transcript.answers] == [("overall", 5)]
    assert service.transcript("sms", "+358409999999").messages == ()


def test_a_redelivered_message_returns_the_same_replies_and_records_nothing(
    service: ConversationService, engine: Engine
) -> None:
    first = service.handle(sms(PHONE, "PALAUTE", "SM1"), NOW)
    second = service.handle(sms(PHONE, "4", "SM2"), NOW + timedelta(seconds=5))
    before = rows(engine, "SELECT count(*) AS n FROM messages")[0].n

    again = service.handle(sms(PHONE, "4", "SM2"), NOW + timedelta(seconds=50))

    assert again.duplicate is True
    assert first.duplicate is second.duplicate is False
    assert again.replies == second.replies
    assert [m.text for m in again.replies] == ["Mistä pidit?"]
    assert rows(engine, "SELECT count(*) AS n FROM messages")[0].n == before
    assert rows(engine, "SELECT count(*) AS n FROM answers")[0].n == 1
    # The run did not move on: the next reply answers "liked", not a later step.
    third = service.handle(sms(PHONE, "hyvät kirjat", "SM3"), NOW + timedelta(minutes=1))
    assert [m.text for m in third.replies] == ["Suosittelisitko meitä? 0-10"]


def test_replies_beyond_the_inline_limit_wait_in_the_outbox(
    service: ConversationService, engine: Engine
) -> None:
    service.handle(sms(PHONE, "PALAUTE", "SM1"), NOW)
    service.handle(sms(PHONE, "5", "SM2"), NOW)
    service.handle(sms(PHONE, "ohita", "SM3"), NOW)
    result = service.handle(sms(PHONE, "10", "SM4"), NOW, inline_limit=0)

    assert result.replies == ()
    assert result.queued == 1
    with transaction(engine) as session:
        claimed = outbox.claim_due(
            session, NOW, 10, "worker-1", timedelta(minutes=1), contacts=service.contacts
        )
    assert [(m.text, m.address, m.channel, m.kind) for m in claimed] == [
        ("Kiitos!", PHONE, "sms", OutgoingKind.CLOSING.value)
    ]
    skipped = rows(engine, "SELECT step_id, skipped FROM answers WHERE step_id = 'liked'")
    assert [(a.step_id, bool(a.skipped)) for a in skipped] == [("liked", True)]


def test_start_queues_the_first_prompt_for_a_follow_up(
    service: ConversationService, engine: Engine
) -> None:
    result = service.start("sms", PHONE, "survey", now=NOW, language="sv", service_point="x")

    assert result.replies == ()
    assert result.queued == 1
    with transaction(engine) as session:
        (message,) = outbox.claim_due(
            session, NOW, 10, "w", timedelta(minutes=1), contacts=service.contacts
        )
    assert (message.text, message.address) == ("Hur lyckades vi? Svara 1-5.", PHONE)
    (run,) = rows(engine, "SELECT status, language, service_point FROM flow_runs")
    assert (run.status, run.language, run.service_point) == ("active", "sv", "x")

    # The citizen answers the SMS: the same run continues.
    reply = service.handle(sms(PHONE, "1", "SM9"), NOW + timedelta(hours=1))
    assert [m.text for m in reply.replies] == ["Vad gick fel?"]


def test_start_closes_the_active_run_first(service: ConversationService, engine: Engine) -> None:
    drive(service, PHONE, ["PALAUTE", "4"])
    service.start("sms", PHONE, "survey", now=NOW + timedelta(hours=1), inline_limit=None)

    statuses = rows(engine, "SELECT status FROM flow_runs ORDER BY id")
    assert [r.status for r in statuses] == ["ended", "active"]


def test_opting_out_is_stored_with_its_event(service: ConversationService, engine: Engine) -> None:
    drive(service, PHONE, ["PALAUTE", "STOP"])

    (contact,) = rows(engine, "SELECT opted_out, opted_out_at FROM contacts")
    assert bool(contact.opted_out) is True
    assert contact.opted_out_at is not None
    (event,) = rows(engine, "SELECT action, via, keyword FROM opt_events")
    assert (event.action, event.via, event.keyword) == ("out", "keyword", "STOP")
    assert [r.status for r in rows(engine, "SELECT status FROM flow_runs")] == ["ended"]

    # Nothing is sent to an opted-out contact; a follow-up does not start either.
    assert drive(service, PHONE, ["PALAUTE"], start_minute=10) == [[]]
    assert service.start("sms", PHONE, "survey", now=NOW).queued == 0


def test_expire_due_closes_only_runs_past_their_expiry(
    service: ConversationService, engine: Engine
) -> None:
    drive(service, PHONE, ["PALAUTE"])
    drive(service, "+358401111111", ["PALAUTE"], start_minute=60 * 20)

    assert service.expire_due(NOW + timedelta(hours=23)) == 0
    assert service.expire_due(NOW + timedelta(hours=24, minutes=1)) == 1
    assert service.expire_due(NOW + timedelta(hours=24, minutes=2)) == 0

    states = rows(engine, "SELECT status, completed_at FROM flow_runs ORDER BY id")
    assert [s.status for s in states] == ["expired", "active"]
    # An answer after the sweep closed the run is told the survey closed (in the run's
    # language), and stored as an inbound message without an answer.
    late = drive(service, PHONE, ["4"], start_minute=60 * 25)
    assert late == [["Tämä kysely on jo päättynyt. Kiitos!"]]
    assert rows(engine, "SELECT count(*) AS n FROM answers")[0].n == 0
    # The citizen can start again afterwards.
    assert drive(service, PHONE, ["PALAUTE"], start_minute=60 * 30) == [
        ["Miten onnistuimme? Vastaa 1-5."]
    ]


def test_a_run_stays_on_the_flow_version_it_started_with(engine: Engine, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    old = make_service(engine, catalogue_in(flows))
    drive(old, PHONE, ["PALAUTE", "1"])  # now at "wrong", the old version's step

    # Staff edit the flow: the texts change, the step "wrong" is removed and a question
    # is added. The service restarts with the new catalogue while the run is half-way.
    edited = (
        SURVEY_YAML.replace("Mikä meni pieleen?", "UUSI: mikä meni pieleen?")
        .replace("goto: wrong", "goto: liked")
        .replace("Suosittelisitko meitä? 0-10", "UUSI: suosittelisitko? 0-10")
    )
    edited = edited.replace(
        """  - id: wrong
    type: text
    optional: true
    max_length: 20
    text:
      fi: "UUSI: mikä meni pieleen?"
      sv: "Vad gick fel?"
      en: "What went wrong?"
    next: recommend
""",
        "",
    )
    assert "id: wrong" not in edited
    new = make_service(engine, catalogue_in(flows, edited))

    # The old run continues on the old version: its step and texts.
    assert drive(new, PHONE, ["huono palvelu", "3"], start_minute=5) == [
        ["Suosittelisitko meitä? 0-10"],
        ["Kiitos!"],
    ]
    # A new run starts on the new version.
    assert drive(new, "+358402222222", ["PALAUTE", "1"], start_minute=10) == [
        ["Miten onnistuimme? Vastaa 1-5."],
        ["Mistä pidit?"],
    ]
    versions = rows(engine, "SELECT flow_id, flow_version AS version FROM flow_runs ORDER BY id")
    assert versions[0].version != versions[1].version
    stored = rows(engine, "SELECT version FROM flow_versions ORDER BY id")
    assert [v.version for v in stored] == [versions[0].version, versions[1].version]
    old_answers = rows(
        engine, "SELECT step_id, flow_version FROM answers WHERE run_id = 1 ORDER BY id"
    )
    assert [(a.step_id, a.flow_version) for a in old_answers] == [
        ("overall", versions[0].version),
        ("wrong", versions[0].version),
        ("recommend", versions[0].version),
    ]


def test_a_failed_write_leaves_nothing_half_written(
    service: ConversationService, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    drive(service, PHONE, ["PALAUTE"])
    before = rows(engine, "SELECT count(*) AS n FROM messages")[0].n
    calls = []

    def broken(*args: object, **kwargs: object) -> None:
        calls.append(1)
        raise sa_exc.OperationalError("INSERT INTO answers", {}, Exception("disk I/O error"))

    monkeypatch.setattr(runs, "insert_answers", broken)
    with pytest.raises(RetryableStorageError) as caught:
        service.handle(sms(PHONE, "5", "SM-x"), NOW + timedelta(minutes=1))

    assert caught.value.retryable is True
    assert len(calls) == 1 + service.retries  # retried, then given up
    assert rows(engine, "SELECT count(*) AS n FROM messages")[0].n == before
    assert rows(engine, "SELECT count(*) AS n FROM answers")[0].n == 0
    monkeypatch.undo()
    # The provider redelivers: now it works, exactly once.
    result = service.handle(sms(PHONE, "5", "SM-x"), NOW + timedelta(minutes=2))
    assert result.duplicate is False
    assert [m.text for m in result.replies] == ["Mistä pidit?"]


def test_naive_datetimes_are_refused(service: ConversationService) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        service.handle(sms(PHONE, "PALAUTE"), NOW.replace(tzinfo=None))


# --- concurrency ------------------------------------------------------------------------


def _in_threads(count: int, target: object) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            target(index)  # type: ignore[operator]
        except BaseException as error:  # reported to the test below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_messages_from_one_person_are_handled_one_after_the_other(
    db_url: str, catalogue: Catalogue
) -> None:
    """Several workers (own engines = own connections) get one contact's replies at once."""
    engines = [make_engine(db_url) for _ in range(4)]
    services = [make_service(e, catalogue) for e in engines]
    try:
        services[0].handle(sms(PHONE, "PALAUTE", "SM0"), NOW)
        # Valid whichever step they land on (overall 1-5 >= 3, liked: any text,
        # recommend 0-10); the fourth arrives after the survey is complete.
        texts = ["3", "4", "5", "5"]

        def send(index: int) -> None:
            services[index].handle(
                sms(PHONE, texts[index], f"SM{index + 1}"), NOW + timedelta(seconds=1)
            )

        assert _in_threads(4, send) == []
        engine = engines[0]
        inbound = rows(engine, "SELECT text FROM messages WHERE direction = 'in' ORDER BY id")
        assert len(inbound) == 5
        (run,) = rows(engine, "SELECT id, status FROM flow_runs")
        answers = rows(engine, "SELECT step_id, raw_text FROM answers ORDER BY id")
        # Each turn saw the one before: three answers for the three steps, in the order
        # the messages were handled, each stored once, and the run is complete.
        assert [a.step_id for a in answers] == ["overall", "liked", "recommend"]
        assert [a.raw_text for a in answers] == [m.text for m in inbound[1:4]]
        assert run.status == "completed"
        replies = rows(engine, "SELECT reply_to FROM messages WHERE direction = 'out'")
        assert len({r.reply_to for r in replies}) == 5  # every message got its answer
    finally:
        for engine in engines:
            engine.dispose()


def test_simultaneous_first_messages_create_one_contact_and_one_run(
    db_url: str, catalogue: Catalogue
) -> None:
    engines = [make_engine(db_url) for _ in range(6)]
    services = [make_service(e, catalogue) for e in engines]
    try:

        def send(index: int) -> None:
            services[index].handle(sms(PHONE, "PALAUTE", f"SM{index}"), NOW)

        assert _in_threads(6, send) == []
        engine = engines[0]
        assert rows(engine, "SELECT count(*) AS n FROM contacts")[0].n == 1
        statuses = [r.status for r in rows(engine, "SELECT status FROM flow_runs")]
        assert statuses.count("active") == 1
        assert len(statuses) == 6  # each PALAUTE restarted the survey; 5 were replaced
    finally:
        for engine in engines:
            engine.dispose()


def test_the_same_delivery_twice_at_once_is_recorded_once(
    db_url: str, catalogue: Catalogue
) -> None:
    engines = [make_engine(db_url) for _ in range(4)]
    services = [make_service(e, catalogue) for e in engines]
    try:
        results = []

        def send(index: int) -> None:
            results.append(services[index].handle(sms(PHONE, "PALAUTE", "SM-same"), NOW))

        assert _in_threads(4, send) == []
        assert sorted(r.duplicate for r in results) == [False, True, True, True]
        assert {tuple(m.text for m in r.replies) for r in results} == {
            ("Miten onnistuimme? Vastaa 1-5.",)
        }
        engine = engines[0]
        assert rows(engine, "SELECT count(*) AS n FROM messages")[0].n == 2
        assert rows(engine, "SELECT count(*) AS n FROM flow_runs")[0].n == 1
    finally:
        for engine in engines:
            engine.dispose()


def test_runs_status_values_match_the_core(service: ConversationService, engine: Engine) -> None:
    drive(service, PHONE, ["PALAUTE"])
    (run,) = rows(engine, "SELECT status FROM flow_runs")
    assert run.status == RunStatus.ACTIVE.value
    assert MessageStatus.INLINE.value in {
        r.status for r in rows(engine, "SELECT status FROM messages")
    }


def test_a_run_whose_flow_was_removed_is_closed_not_guessed_at(
    engine: Engine, tmp_path: Path
) -> None:
    first = make_service(engine, catalogue_in(tmp_path / "a"))
    drive(first, PHONE, ["PALAUTE"])
    with engine.begin() as connection:  # the stored text of that version is gone too
        connection.execute(sa.text("UPDATE flow_versions SET source = ''"))
    other = SURVEY_YAML.replace("id: survey", "id: other-survey").replace("PALAUTE", "KYSELY")
    second = make_service(engine, catalogue_in(tmp_path / "b", other))

    second.handle(sms(PHONE, "5", "SM-late"), NOW + timedelta(minutes=5))

    statuses = rows(engine, "SELECT flow_id, status FROM flow_runs ORDER BY id")
    assert [(r.flow_id, r.status) for r in statuses] == [("survey", "ended")]
    assert rows(engine, "SELECT count(*) AS n FROM answers")[0].n == 0


def _locked_start(session: Session, contact_id: int, **choices: Any) -> StartRequest:
    (contact, address) = lock_many(session, [contact_id])[contact_id]
    active = runs.active_runs(session, [contact_id], lock=True).get(contact_id)
    return StartRequest(contact, address, active, "survey", **choices)


def test_start_many_in_runs_inside_the_callers_transaction(
    service: ConversationService, engine: Engine
) -> None:
    with transaction(engine) as session:
        contact = service.contacts.find_or_create(session, "sms", PHONE, NOW)
    with pytest.raises(RuntimeError, match="caller gave up"), transaction(engine) as session:
        service.start_many_in(session, [_locked_start(session, contact.id)], now=NOW)
        raise RuntimeError("caller gave up")
    assert rows(engine, "SELECT count(*) AS n FROM flow_runs")[0].n == 0  # rolled back

    with transaction(engine) as session:
        (result,) = service.start_many_in(
            session, [_locked_start(session, contact.id, language="en")], now=NOW
        )
    assert result.queued == 1
    assert result.run_id is not None
    (message,) = rows(engine, "SELECT text, status FROM messages")
    assert (message.text, message.status) == ("How did we do? Reply 1-5.", "queued")


def test_expiry_and_a_late_answer_at_the_same_time_do_not_clash(
    db_url: str, catalogue: Catalogue
) -> None:
    engines = [make_engine(db_url) for _ in range(2)]
    services = [make_service(e, catalogue) for e in engines]
    try:
        for n in range(10):
            services[0].handle(sms(f"+35840000{n:04d}", "PALAUTE", f"S{n}"), NOW)
        late = NOW + timedelta(hours=25)

        def work(index: int) -> None:
            if index == 0:
                services[0].expire_due(late)
            else:
                for n in range(10):
                    services[1].handle(sms(f"+35840000{n:04d}", "4", f"L{n}"), late)

        assert _in_threads(2, work) == []
        statuses = rows(engines[0], "SELECT status FROM flow_runs")
        assert {r.status for r in statuses} == {"expired"}  # by the sweeper or the reply
        assert len(statuses) == 10
        assert rows(engines[0], "SELECT count(*) AS n FROM answers")[0].n == 0
    finally:
        for engine in engines:
            engine.dispose()


def test_erasing_a_contact_removes_their_runs_answers_and_messages(
    service: ConversationService, engine: Engine
) -> None:
    drive(service, PHONE, ["PALAUTE", "5", "kiva", "10"])
    drive(service, "+358402222222", ["PALAUTE", "4"], start_minute=10)
    with transaction(engine) as session:
        contact = service.contacts.find(session, "sms", PHONE)
        assert contact is not None
        assert service.contacts.erase(session, contact.id)

    for table in ("contacts", "flow_runs", "answers"):
        assert rows(engine, f"SELECT count(*) AS n FROM {table}")[0].n == 1, table
    left = rows(engine, "SELECT DISTINCT contact_id FROM messages")
    assert len(left) == 1
    assert service.transcript("sms", PHONE).messages == ()
