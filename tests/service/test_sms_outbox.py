"""The SMS outbox worker against the loopback fake Twilio API, on SQLite and PostgreSQL.

Retries with back-off, permanent errors that mark the contact, status callbacks, a worker
killed between Twilio's answer and our record, and the per-sender rate limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask

from channels.twilio.sender import TwilioSender
from channels.twilio.signature import compute_signature
from fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioAPI
from palaute.cli import main
from service.retry import RetryPolicy
from service.sms_outbox import SmsOutbox
from storage import sms as sms_repo
from storage.db import transaction
from storage.tables import MessageRow
from tests.clock import Clock
from tests.palaute.sms_support import (
    PUBLIC,
    SURVEY_NUMBER,
    make_app,
    services_of,
    worker_for,
)


@pytest.fixture
def app(db_url: str, clock: Clock, twilio_api: FakeTwilioAPI) -> Iterator[Flask]:
    made = make_app(db_url, clock, twilio_api)
    yield made
    services_of(made).close()


def queue_survey(app: Flask, clock: Clock, number: str) -> int:
    """A follow-up survey for ``number``: its first prompt waits in the outbox."""
    result = services_of(app).conversations.start(
        "sms", number, "quick-poll", now=clock(), inline_limit=0
    )
    assert result.queued == 1
    with services_of(app).db.connect() as connection:
        return int(
            connection.execute(
                sa.text(
                    "SELECT max(id) FROM messages WHERE direction = 'out' "
                    "AND status = 'queued' AND contact_id = :c"
                ),
                {"c": result.contact_id},
            ).scalar_one()
        )


def row(app: Flask, message_id: int) -> Any:
    messages = MessageRow.__table__  # typed columns: aware datetimes on both backends
    with services_of(app).db.connect() as connection:
        return connection.execute(sa.select(messages).where(messages.c.id == message_id)).one()


def attempts(app: Flask, message_id: int) -> list[tuple[str, str | None]]:
    with transaction(services_of(app).db) as session:
        return [(a.outcome, a.provider_id) for a in sms_repo.attempts_of(session, message_id)]


def contact(app: Flask, number: str) -> Any:
    services = services_of(app)
    with transaction(services.db) as session:
        return services.conversations.contacts.find(session, "sms", number)


def post_status(app: Flask, form: dict[str, str], message_id: int | None) -> Any:
    path = "/webhooks/twilio/status" + (f"?m={message_id}" if message_id else "")
    signature = compute_signature(AUTH_TOKEN, PUBLIC + path, form)
    return app.test_client().post(path, data=form, headers={"X-Twilio-Signature": signature})


def test_a_queued_prompt_is_sent_and_status_callbacks_follow_it(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    number = "+358401100001"
    message_id = queue_survey(app, clock, number)
    report = worker_for(app, clock).run_until_idle()
    assert (report.sent, report.retried, report.failed) == (1, 0, 0)
    (sent,) = twilio_api.messages
    assert sent["to"] == number and sent["from"] == SURVEY_NUMBER
    assert sent["body"].startswith("Miten asiointi sujui tänään?")
    assert sent["status_callback"] == f"{PUBLIC}/webhooks/twilio/status?m={message_id}"
    stored = row(app, message_id)
    assert (stored.status, stored.provider_id, stored.attempts) == ("sent", sent["sid"], 1)
    assert attempts(app, message_id) == [("sent", sent["sid"])]

    # queued -> sent -> delivered, and a late "sent" does not move it back
    for status, expected in [("queued", "sent"), ("sent", "sent"), ("delivered", "delivered"),
                             ("sent", "delivered")]:  # fmt: skip
        response = post_status(app, twilio_api.status_form(sent["sid"], status), message_id)
        assert response.status_code == 200
        assert row(app, message_id).status == expected, status
    assert contact(app, number).unreachable_reason is None


def test_undelivered_and_failed_callbacks(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    unreachable, filtered = "+358401100002", "+358401100003"
    first = queue_survey(app, clock, unreachable)
    second = queue_survey(app, clock, filtered)
    worker = worker_for(app, clock)
    worker.run_until_idle()
    sid_1, sid_2 = (row(app, m).provider_id for m in (first, second))
    assert (
        post_status(app, twilio_api.status_form(sid_1, "undelivered", 30003), first).status_code
        == 200
    )
    assert (
        post_status(app, twilio_api.status_form(sid_2, "failed", 30007), second).status_code == 200
    )
    assert (row(app, first).status, row(app, first).error_code) == ("undelivered", "30003")
    assert (row(app, second).status, row(app, second).error_code) == ("failed", "30007")
    # 30003 says the handset cannot be reached: no more messages to it until it writes
    assert contact(app, unreachable).unreachable_reason == "unreachable (30003)"
    assert contact(app, filtered).unreachable_reason is None  # 30007 is about one message
    later = queue_survey(app, clock, unreachable)
    worker.run_until_idle()
    assert (row(app, later).status, row(app, later).error_code) == ("skipped", "unreachable")
    assert len(twilio_api.sent_to(unreachable)) == 1


def test_unknown_and_ignored_callbacks_change_nothing(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    form = {
        "SmsSid": "SM" + "0" * 32, "SmsStatus": "delivered", "MessageStatus": "delivered",
        "To": "+358401100009", "MessageSid": "SM" + "0" * 32, "AccountSid": ACCOUNT_SID,
        "From": SURVEY_NUMBER, "ApiVersion": "2010-04-01",
    }  # fmt: skip
    response = post_status(app, form, None)
    assert (response.status_code, response.get_data(as_text=True).strip()) == (200, "unknown")
    received = dict(form, MessageStatus="received", SmsStatus="received")
    response = post_status(app, received, None)
    assert (response.status_code, response.get_data(as_text=True).strip()) == (200, "ignored")
    no_sid = {k: v for k, v in form.items() if k not in ("MessageSid", "SmsSid")}
    assert post_status(app, no_sid, None).status_code == 400


def test_429_waits_for_retry_after_and_holds_back_the_sender(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    message_id = queue_survey(app, clock, "+358401100004")
    worker = worker_for(app, clock)
    twilio_api.fail_next(429, retry_after=30)
    report = worker.run_until_idle()
    assert (report.retried, report.sent) == (1, 0)
    stored = row(app, message_id)
    assert (stored.status, stored.error_code) == ("queued", "20429")
    assert stored.next_attempt_at >= clock() + timedelta(seconds=30)
    with transaction(services_of(app).db) as session:
        slot = sms_repo.reserve_slot(session, SURVEY_NUMBER, clock(), timedelta(0))
    assert slot >= clock() + timedelta(seconds=30)  # every worker waits for Twilio
    assert worker.run_until_idle().claimed == 0  # not due yet
    clock.advance(seconds=31)
    assert worker.run_until_idle().sent == 1
    assert len(twilio_api.creates()) == 2 and len(twilio_api.messages) == 1
    assert attempts(app, message_id) == [("retry", None), ("sent", twilio_api.messages[0]["sid"])]


def test_5xx_and_network_errors_back_off_exponentially_then_give_up(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    message_id = queue_survey(app, clock, "+358401100005")
    policy = RetryPolicy(base=timedelta(seconds=10), max_attempts=4)
    worker = worker_for(app, clock, policy=policy)
    twilio_api.fail_next(500, times=2)
    twilio_api.fail_next(503, times=2)
    delays = []
    for _ in range(3):
        assert worker.run_until_idle().retried == 1
        stored = row(app, message_id)
        assert stored.status == "queued"
        delays.append((stored.next_attempt_at - clock()).total_seconds())
        clock.advance(seconds=delays[-1])
    # 10 s, 20 s, 40 s, each with up to half taken off at random
    for delay, full in zip(delays, (10, 20, 40), strict=True):
        assert full / 2 <= delay <= full
    report = worker.run_until_idle()
    assert (report.failed, report.retried) == (1, 0)
    stored = row(app, message_id)
    assert (stored.status, stored.error_code, stored.attempts) == ("failed", "20500", 4)
    assert twilio_api.messages == []
    assert [a for a, _ in attempts(app, message_id)] == ["retry", "retry", "retry", "failed"]


def test_network_trouble_is_retried(app: Flask, clock: Clock, twilio_api: FakeTwilioAPI) -> None:
    message_id = queue_survey(app, clock, "+358401100006")
    sender = TwilioSender(
        ACCOUNT_SID, AUTH_TOKEN, from_number=SURVEY_NUMBER, base_url="http://127.0.0.1:9"
    )
    worker = worker_for(app, clock)
    worker.sender = sender
    assert worker.run_until_idle().retried == 1
    assert (row(app, message_id).status, row(app, message_id).error_code) == ("queued", "network")


PERMANENT = [
    # Twilio code, contact opted out afterwards, contact's unreachable reason
    (21610, True, None),
    (21211, False, "invalid (21211)"),
    (21614, False, "invalid (21614)"),
    (30003, False, "unreachable (30003)"),
    (30005, False, "unreachable (30005)"),
    (30006, False, "unreachable (30006)"),
]


def test_permanent_errors_are_not_retried_and_mark_the_contact(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    worker = worker_for(app, clock)
    for index, (code, opted_out, unreachable) in enumerate(PERMANENT):
        number = f"+3584011003{index:02d}"
        first = queue_survey(app, clock, number)
        second = queue_survey(app, clock, number)  # a later survey, already waiting
        twilio_api.fail_for(number, code)
        report = worker.run_until_idle()
        assert (report.failed, report.retried, report.skipped) == (1, 0, 1), code
        assert (row(app, first).status, row(app, first).error_code) == ("failed", str(code))
        # the next message to this contact is not even tried
        reason = "opted_out" if opted_out else "unreachable"
        assert (row(app, second).status, row(app, second).error_code) == ("skipped", reason)
        found = contact(app, number)
        assert (found.opted_out, found.unreachable_reason) == (opted_out, unreachable)
        assert len([r for r in twilio_api.creates() if r.form["To"] == number]) == 1
    with services_of(app).db.connect() as connection:
        events = list(connection.execute(sa.text("SELECT action, via, keyword FROM opt_events")))
    assert events == [("out", "provider", "twilio error 21610")]
    assert twilio_api.messages == []


class Killed(BaseException):
    """The worker process dies (SIGKILL, OOM): nothing after this line runs."""


class DiesAfterTwilioAnswers(TwilioSender):
    def send(self, to: str, body: str, *, status_callback: str | None = None) -> Any:
        super().send(to, body, status_callback=status_callback)
        raise Killed


class DiesBeforeSending(TwilioSender):
    def send(self, to: str, body: str, *, status_callback: str | None = None) -> Any:
        raise Killed


def _dying_worker(app: Flask, clock: Clock, twilio_api: FakeTwilioAPI, kind: type) -> SmsOutbox:
    worker = worker_for(app, clock)
    worker.sender = kind(
        ACCOUNT_SID, AUTH_TOKEN, from_number=SURVEY_NUMBER, base_url=twilio_api.base_url
    )
    return worker


def test_killed_after_twilio_accepted_is_found_not_resent(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    message_id = queue_survey(app, clock, "+358401100008")
    with pytest.raises(Killed):
        _dying_worker(app, clock, twilio_api, DiesAfterTwilioAnswers).run_until_idle()
    (sent,) = twilio_api.messages
    assert row(app, message_id).status == "sending"
    assert attempts(app, message_id) == [("started", None)]  # the trace of the lost answer

    worker = worker_for(app, clock)
    assert worker.run_until_idle().claimed == 0  # the dead worker's lease still holds
    clock.advance(minutes=5)
    report = worker.run_until_idle()
    assert (report.found, report.sent) == (1, 0)
    stored = row(app, message_id)
    assert (stored.status, stored.provider_id) == ("sent", sent["sid"])
    assert attempts(app, message_id) == [("found", sent["sid"]), ("found", sent["sid"])]
    assert len(twilio_api.creates()) == 1  # never sent twice


def test_killed_after_twilio_accepted_then_a_status_callback_names_the_message(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    message_id = queue_survey(app, clock, "+358401100010")
    with pytest.raises(Killed):
        _dying_worker(app, clock, twilio_api, DiesAfterTwilioAnswers).run_until_idle()
    (sent,) = twilio_api.messages
    response = post_status(app, twilio_api.status_form(sent["sid"], "delivered"), message_id)
    assert response.get_data(as_text=True).strip() == "attached"
    stored = row(app, message_id)
    assert (stored.status, stored.provider_id) == ("delivered", sent["sid"])
    clock.advance(minutes=5)
    assert worker_for(app, clock).run_until_idle().claimed == 0
    assert len(twilio_api.creates()) == 1


def test_killed_before_sending_is_sent_once_later(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    message_id = queue_survey(app, clock, "+358401100011")
    with pytest.raises(Killed):
        _dying_worker(app, clock, twilio_api, DiesBeforeSending).run_until_idle()
    assert twilio_api.messages == []
    clock.advance(minutes=5)
    report = worker_for(app, clock).run_until_idle()
    assert report.sent == 1
    (sent,) = twilio_api.messages
    assert attempts(app, message_id) == [("lost", None), ("sent", sent["sid"])]


def test_an_answer_lost_on_the_wire_is_found_before_resending(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    message_id = queue_survey(app, clock, "+358401100012")
    twilio_api.drop_next()
    worker = worker_for(app, clock)
    assert worker.run_until_idle().retried == 1
    assert row(app, message_id).error_code == "unknown"
    clock.advance(minutes=10)
    report = worker.run_until_idle()
    assert report.found == 1
    (sent,) = twilio_api.messages
    assert row(app, message_id).provider_id == sent["sid"]
    assert len(twilio_api.creates()) == 1


def timed_workers(
    app: Flask, twilio_api: FakeTwilioAPI, **options: Any
) -> tuple[list[SmsOutbox], list[float]]:
    """Two outbox workers (``options`` for ``SmsOutbox``) sharing one sender number, and
    the list to which each Twilio send appends the moment it starts."""
    services = services_of(app)
    started: list[float] = []

    class Timed(TwilioSender):
        def send(self, to: str, body: str, *, status_callback: str | None = None) -> Any:
            started.append(time.monotonic())
            return super().send(to, body, status_callback=status_callback)

    workers = [
        SmsOutbox(
            services.db,
            Timed(ACCOUNT_SID, AUTH_TOKEN, from_number=SURVEY_NUMBER, base_url=twilio_api.base_url),
            services.conversations.contacts,
            public_base_url=PUBLIC,
            **options,
        )
        for _ in range(2)
    ]
    return workers, started


def test_rate_limit_per_sender_is_shared_by_all_workers(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    for index in range(8):
        queue_survey(app, clock, f"+3584011002{index:02d}")
    services = services_of(app)
    # 5 messages per second from one number, whatever the number of workers
    workers, started = timed_workers(app, twilio_api, rate_per_second=5.0)
    # one message per claim, so both workers take turns at the outbox
    threads = [threading.Thread(target=w.run_until_idle, kwargs={"limit": 1}) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(twilio_api.messages) == 8 and len(started) == 8
    times = sorted(started)
    # Slots are 0.2 s apart and no send starts before its slot; between the slot and the
    # request lie a commit and a sleep's overshoot (a few ms; on a loaded 2-core machine
    # up to ~0.11 s was seen for one send, which shortens the window after it). A limit
    # kept per worker instead of per number would start two sends ~0 s apart (k=1 needs
    # >= 0.08 s) and three within ~0.2 s (k=2 needs >= 0.28 s), so both still fail here.
    jitter = 0.12
    for k in range(1, len(times)):
        windows = [b - a for a, b in zip(times, times[k:], strict=False)]
        assert min(windows) >= k * 0.2 - jitter, (k, windows)
    with services.db.connect() as connection:
        senders = connection.execute(sa.text("SELECT DISTINCT worker FROM sms_send_attempts"))
        assert {w for (w,) in senders} == {w.worker_id for w in workers}


def test_outbox_run_command(
    db_url: str, twilio_api: FakeTwilioAPI, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(db_url, clock, twilio_api)
    queue_survey(app, clock, "+358401100013")
    services_of(app).close()
    for name, value in {
        "DATABASE_URL": db_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": SURVEY_NUMBER,
        "TWILIO_API_BASE_URL": twilio_api.base_url,
        "PUBLIC_BASE_URL": PUBLIC,
        "SMS_RATE_PER_SECOND": "100",
    }.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["outbox", "run", "--once"])
    assert result.exit_code == 0, result.output
    assert "sent 1" in result.output
    assert len(twilio_api.messages) == 1
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "")
    result = CliRunner().invoke(main, ["outbox", "run", "--once"])
    assert result.exit_code != 0
    assert "TWILIO_AUTH_TOKEN" in result.output


def test_a_batch_is_sent_in_parallel_once_each_and_opted_out_people_are_skipped(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    numbers = [f"+3584011004{index:02d}" for index in range(30)]
    ids = {number: queue_survey(app, clock, number) for number in numbers}
    services = services_of(app)
    stopped = numbers[7]
    with transaction(services.db) as session:
        found = services.conversations.contacts.find(session, "sms", stopped)
        assert found is not None
        services.conversations.contacts.record_opt(
            session, found.id, action="out", via="keyword", keyword="STOP", now=clock()
        )
    twilio_api.fail_for(numbers[3], 30003)
    worker = worker_for(app, clock, send_threads=4)
    report = worker.run_until_idle(limit=50)
    assert (report.sent, report.skipped, report.failed) == (28, 1, 1)
    assert sorted(m["to"] for m in twilio_api.messages) == sorted(
        set(numbers) - {stopped, numbers[3]}
    )
    assert stopped not in {r.form["To"] for r in twilio_api.creates()}
    by_number = {m["to"]: m["sid"] for m in twilio_api.messages}
    for number, sid in by_number.items():
        stored = row(app, ids[number])
        assert (stored.status, stored.provider_id) == ("sent", sid)
        assert attempts(app, ids[number]) == [("sent", sid)]
    assert row(app, ids[stopped]).status == "skipped"
    assert row(app, ids[numbers[3]]).status == "failed"


def test_a_send_whose_claim_would_run_out_is_queued_again_untried(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    message_id = queue_survey(app, clock, "+358401100014")
    with transaction(services_of(app).db) as session:
        # the sender's next free slot is further away than the worker's claim lasts
        sms_repo.push_slot(session, SURVEY_NUMBER, clock() + timedelta(minutes=10), clock())
    worker = worker_for(app, clock)
    worker.sleep = lambda seconds: clock.advance(seconds=seconds)
    report = worker.run_once()
    assert (report.sent, report.retried) == (0, 1)
    assert twilio_api.creates() == []
    stored = row(app, message_id)
    assert (stored.status, stored.error_code) == ("queued", "claim_expiring")
    assert attempts(app, message_id) == [("retry", None)]
    assert worker.run_until_idle().sent == 1  # the slot has come: sent once
    assert len(twilio_api.messages) == 1


def test_parallel_sends_still_keep_the_senders_rate(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    for index in range(16):
        queue_survey(app, clock, f"+3584011005{index:02d}")
    # 25 per second: slots 40 ms apart, closer than a request takes, so 4 threads each
    workers, started = timed_workers(app, twilio_api, rate_per_second=25.0, send_threads=4)
    threads = [threading.Thread(target=w.run_until_idle, kwargs={"limit": 5}) for w in workers]
    begin = time.monotonic()  # no slot can come before this
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(m["to"] for m in twilio_api.messages) == sorted(
        f"+3584011005{index:02d}" for index in range(16)
    )
    times = sorted(started)
    assert len(times) == 16
    # The k-th send waits for the k-th slot at least (a busy machine only makes it later);
    # without the shared slots all 16 would leave in a few milliseconds.
    for k, at in enumerate(times):
        assert at - begin >= k * 0.04 - 0.01, (k, [t - begin for t in times])
