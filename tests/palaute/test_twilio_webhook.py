"""The SMS channel end to end: signed Twilio webhooks -> conversation -> TwiML and outbox.

Every example flow in flows/ is answered in every language it has a keyword for, through
the real webhook (signed with twilio's RequestValidator) and the outbox worker sending to
the loopback fake Twilio API. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from bot.catalogue import Catalogue
from bot.flow import Flow, StepKind
from bot.replies import parse_reply
from channels.twilio.signature import compute_signature
from fakes.twilio_api import AUTH_TOKEN, FakeTwilioAPI, load_fixture
from storage.db import transaction
from tests.clock import Clock
from tests.palaute.sms_support import (
    PUBLIC,
    REPO_FLOWS,
    Phone,
    inbound_form,
    make_app,
    new_sid,
    services_of,
    twiml_texts,
    worker_for,
)

CATALOGUE = Catalogue.load(REPO_FLOWS)
YES = {"fi": "kyllä", "sv": "ja", "en": "yes"}
COMMENT = {
    "fi": "Palvelu oli ystävällistä ja nopeaa.",
    "sv": "Personalen var vänlig och snabb.",
    "en": "The staff were kind and quick.",
}


@pytest.fixture
def app(db_url: str, clock: Clock, twilio_api: FakeTwilioAPI) -> Iterator[Flask]:
    made = make_app(db_url, clock, twilio_api)
    yield made
    services_of(made).close()


def phone(app: Flask, twilio_api: FakeTwilioAPI, clock: Clock, number: str) -> Phone:
    return Phone(app, number, twilio_api, worker_for(app, clock))


def table_count(app: Flask, table: str, where: str = "1=1") -> int:
    with services_of(app).db.connect() as connection:
        return int(
            connection.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar()
        )


def contact_state(app: Flask, number: str) -> tuple[bool, str | None] | None:
    services = services_of(app)
    with transaction(services.db) as session:
        found = services.conversations.contacts.find(session, "sms", number)
    return None if found is None else (found.opted_out, found.unreachable_reason)


def opt_events(app: Flask, number: str) -> list[tuple[str, str, str]]:
    services = services_of(app)
    with transaction(services.db) as session:
        found = services.conversations.contacts.find(session, "sms", number)
    if found is None:
        return []
    with services.db.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT action, via, keyword FROM opt_events WHERE contact_id = :c ORDER BY id"
            ),
            {"c": found.id},
        )
        return [(r.action, r.via, r.keyword) for r in rows]


def contact_row(app: Flask) -> list[Any]:
    with services_of(app).db.connect() as connection:
        return list(
            connection.execute(
                sa.text("SELECT opted_out, unreachable_reason FROM contacts ORDER BY id")
            )
        )


def answer_for(flow: Flow, step_id: str, language: str) -> str:
    """A valid SMS answer to the step, as a citizen would type it."""
    step = flow.step(step_id)
    candidates: list[str] = []
    if step.kind is StepKind.SCALE:
        candidates = [str(step.scale_max), str(step.scale_min)]
    elif step.kind is StepKind.NPS:
        candidates = ["9"]
    elif step.kind is StepKind.NUMBER:
        candidates = [str(step.min_value if step.min_value is not None else 1)]
    elif step.kind is StepKind.YES_NO:
        candidates = [YES.get(language, "yes"), "yes"]
    elif step.kind is StepKind.CHOICE:
        first = step.options[0]
        candidates = [first.label.get(language, ""), "1", first.id]
    elif step.kind is StepKind.TEXT:
        candidates = [COMMENT.get(language, "Good service, thank you.")]
    for text in candidates:
        if text and parse_reply(step, text, language).valid:
            return text
    raise AssertionError(f"no valid answer for {flow.id}/{step_id} in {language}")


@pytest.mark.parametrize("flow_id", [flow.id for flow in CATALOGUE.all()])
def test_every_example_flow_over_sms(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock, flow_id: str
) -> None:
    """A whole survey in every language the flow has an SMS keyword for."""
    flow = CATALOGUE.get(flow_id)
    assert flow is not None
    conversations = services_of(app).conversations
    languages = [lang for lang, words in sorted(flow.triggers.keywords.items()) if words]
    assert languages, f"{flow_id} has no SMS keyword"
    for index, language in enumerate(languages):
        number = f"+3584010000{index:02d}"
        citizen = phone(app, twilio_api, clock, number)
        first = citizen.send(flow.triggers.keywords[language][0])
        assert len(first) == 1, "the first prompt travels in the TwiML answer"
        answered: list[str] = []
        for _turn in range(len(flow.steps) + 2):
            transcript = conversations.transcript("sms", number)
            assert transcript.run is not None
            if transcript.run.current_step is None:
                break
            step_id = transcript.run.current_step
            clock.advance(seconds=20)
            citizen.send(answer_for(flow, step_id, language))
            answered.append(step_id)
        transcript = conversations.transcript("sms", number)
        assert transcript.run is not None and transcript.run.status.value == "completed"
        assert transcript.run.language == language
        # the citizen got the closing text, in their language, last
        assert citizen.received[-1] == flow.closing[language]
        # every answer was stored once, for the steps that were asked
        assert [a.step_id for a in transcript.answers] == answered
        # the phone received exactly the outbound log, in order: nothing lost or doubled
        outbound = [m for m in transcript.messages if m.direction.value == "out"]
        assert [m.text for m in outbound] == citizen.received
        assert {m.status.value for m in outbound} <= {"inline", "sent"}
    assert all(len(m["body"]) <= 1600 for m in twilio_api.messages)


def test_signed_request_behind_a_proxy_with_an_explicit_port(
    db_url: str, clock: Clock, twilio_api: FakeTwilioAPI
) -> None:
    vector = next(
        v for v in load_fixture("signature_vectors.json")["vectors"] if v["name"] == "explicit_port"
    )
    app = make_app(
        db_url, clock, twilio_api, public_base_url=None, trust_forwarded_headers=True,
        twilio_auth_token=vector["auth_token"],
    )  # fmt: skip
    client = app.test_client()
    headers = {
        "X-Twilio-Signature": vector["expected_signature"],
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "kysely.example.fi",
    }
    dropped_port = client.post("/webhooks/twilio/sms", data=vector["params"], headers=headers)
    assert dropped_port.status_code == 403
    assert table_count(app, "messages") == 0
    headers["X-Forwarded-Port"] = "8443"
    response = client.post("/webhooks/twilio/sms", data=vector["params"], headers=headers)
    assert response.status_code == 200
    assert twiml_texts(response.get_data(as_text=True))  # the STOP confirmation
    assert contact_row(app) == [(True, None)]
    services_of(app).close()


def test_missing_or_wrong_signature_is_refused_and_changes_nothing(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    citizen = phone(app, twilio_api, clock, "+358401000002")
    form = inbound_form(citizen.number, "KIRJASTO")
    other_url = compute_signature(AUTH_TOKEN, "https://evil.example/webhooks/twilio/sms", form)
    vector_signature = "XkMWb298SPJe4OdTjc+1CH1sarc="  # valid for another request
    for signature in (None, "", vector_signature, other_url):
        for path in ("/webhooks/twilio/sms", "/webhooks/twilio/status"):
            response = citizen.post(form, path=path, signature=signature)
            assert response.status_code == 403, (signature, path)
    assert table_count(app, "contacts") == 0
    assert table_count(app, "messages") == 0
    # the same form, rightly signed, goes through ...
    assert citizen.post(form).status_code == 200
    # ... but a body changed after signing does not
    tampered = dict(form, Body="LOPETA", MessageSid=new_sid())
    signature = compute_signature(AUTH_TOKEN, PUBLIC + "/webhooks/twilio/sms", form)
    assert citizen.post(tampered, signature=signature).status_code == 403
    assert contact_row(app) == [(False, None)]
    assert table_count(app, "messages", "direction = 'in'") == 1


def test_skipping_the_signature_check_needs_the_setting_and_warns(
    db_url: str, clock: Clock, twilio_api: FakeTwilioAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        app = make_app(db_url, clock, twilio_api, twilio_skip_signature_check=True)
    assert any("TWILIO_SKIP_SIGNATURE_CHECK" in r.getMessage() for r in caplog.records)
    response = app.test_client().post(
        "/webhooks/twilio/sms", data=inbound_form("+358401000003", "HYMIÖ")
    )
    assert response.status_code == 200
    assert len(twiml_texts(response.get_data(as_text=True))) == 1
    services_of(app).close()


OPT_OUT_WORDS = ["STOP", "stop", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT",
                 "LOPETA", "Lopeta", "STOPPA", "AVSLUTA"]  # fmt: skip


def test_opt_out_words_stop_everything_until_opt_in(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    conversations = services_of(app).conversations
    for index, word in enumerate(OPT_OUT_WORDS):
        number = f"+3584010001{index:02d}"
        citizen = phone(app, twilio_api, clock, number)
        assert citizen.send("KIRJASTO")
        # a follow-up survey is waiting in the outbox when the citizen opts out
        conversations.start("sms", number, "quick-poll", now=clock())
        confirmation = citizen.send(word)
        assert len(confirmation) == 1, word  # one confirmation, then silence
        assert contact_state(app, number) == (True, None), word
        assert opt_events(app, number) == [("out", "keyword", word)]
        received = len(twilio_api.sent_to(number))
        assert received == 0, "the waiting follow-up was not sent"

        # nothing reaches the number: not a survey keyword, not an answer, no new follow-up
        assert citizen.send("HYMIÖ") == []
        assert citizen.send("4") == []
        conversations.start("sms", number, "quick-poll", now=clock())
        assert citizen.flush() == []
        assert twilio_api.sent_to(number) == []

        # START / ALOITA / BÖRJA opts back in; then surveys work again
        back_in = ("START", "ALOITA", "BÖRJA", "start")[index % 4]
        assert citizen.send(back_in), word
        assert contact_state(app, number) == (False, None)
        assert opt_events(app, number)[-1] == ("in", "keyword", back_in)
        assert citizen.send("HYMIÖ")
    assert table_count(app, "messages", "status = 'skipped'") == len(OPT_OUT_WORDS)


def test_help_says_who_asks_and_how_to_stop(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    for word, number, stop_word in [
        ("HELP", "+447700900123", "STOP"),
        ("APUA", "+358401000005", "LOPETA"),
        ("HJÄLP", "+46701234567", "STOPPA"),
        ("help", "+358401000006", "LOPETA"),
    ]:
        citizen = phone(app, twilio_api, clock, number)
        (reply,) = citizen.send(word)
        assert "Kaarinan kaupunki" in reply
        assert "02 588 1000" in reply
        assert stop_word in reply, reply
        assert contact_state(app, number) == (False, None)


def test_twilio_opt_out_type_fixtures_and_custom_keywords(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    citizen = phone(app, twilio_api, clock, "+358401234567")
    for name, opted_out in [
        ("inbound_stop.json", True),
        ("inbound_help.json", True),
        ("inbound_start.json", False),
    ]:
        response = citizen.post(load_fixture(name))
        assert response.status_code == 200
        assert contact_row(app) == [(opted_out, None)], name
    # a keyword configured only in the Messaging Service: Twilio flags it with OptOutType
    citizen.send("EI KIITOS", OptOutType="STOP")
    assert contact_row(app) == [(True, None)]
    with services_of(app).db.connect() as connection:
        events = [tuple(r) for r in connection.execute(
            sa.text("SELECT action, via, keyword FROM opt_events ORDER BY id"))]  # fmt: skip
    assert events == [
        ("out", "provider", "STOP"),
        ("in", "provider", "START"),
        ("out", "provider", "EI KIITOS"),
    ]


def test_duplicate_message_sid_gets_the_same_reply_and_is_stored_once(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    citizen = phone(app, twilio_api, clock, "+358401000007")
    citizen.send("HYMIÖ")
    sid = new_sid()
    first = citizen.send("4", sid=sid)
    again = citizen.send("4", sid=sid)
    assert first == again and first
    assert table_count(app, "messages", f"provider_id = '{sid}'") == 1
    assert table_count(app, "answers") == 1
    transcript = services_of(app).conversations.transcript("sms", citizen.number)
    assert transcript.run is not None and transcript.run.current_step == "comment"


BAD_PAYLOADS = [
    ("", {}),
    (None, {}),  # Body missing altogether
    ("", {"NumMedia": "1", "MediaContentType0": "image/jpeg",
          "MediaUrl0": "https://api.twilio.com/x/Media/ME1"}),
    ("x" * 20_000, {}),
    ("\x00\x01\u202e😀😀😀", {}),
    ("kuusi", {}),
]  # fmt: skip


def test_bad_payloads_get_a_polite_reprompt(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    for index, (body, extra) in enumerate(BAD_PAYLOADS):
        number = f"+3584010002{index:02d}"
        citizen = phone(app, twilio_api, clock, number)
        assert len(citizen.send("KIRJASTO")) == 1
        replies = citizen.send(body, **extra)
        assert len(replies) == 1 and replies[0], (body, replies)
        transcript = services_of(app).conversations.transcript("sms", number)
        assert transcript.run is not None and transcript.run.current_step == "overall"
        assert transcript.answers == ()
        if extra:  # media: says that only text can be read
            assert "tekstillä" in replies[0], replies[0]
        else:  # says again how to answer
            assert "1-5" in replies[0] or "1–5" in replies[0], replies[0]


def test_a_bad_payload_without_a_survey_still_gets_an_answer(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    citizen = phone(app, twilio_api, clock, "+358501000009")
    form = load_fixture("inbound_mms.json")
    form["From"] = citizen.number
    response = citizen.post(form)
    assert response.status_code == 200
    assert twiml_texts(response.get_data(as_text=True))


def test_forms_without_a_sender_are_rejected_with_400(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    citizen = phone(app, twilio_api, clock, "+358401000010")
    form = inbound_form(citizen.number, "KIRJASTO")
    del form["From"]
    response = citizen.post(form)
    assert response.status_code == 400
    assert "From" in response.get_data(as_text=True)
    assert table_count(app, "messages") == 0


def test_two_messages_from_one_number_at_once_are_handled_in_order(
    app: Flask, twilio_api: FakeTwilioAPI, clock: Clock
) -> None:
    numbers = [f"+35840200{i:04d}" for i in range(6)]
    phones = [phone(app, twilio_api, clock, n) for n in numbers]
    for citizen in phones:
        citizen.send("HYMIÖ")
    barrier = threading.Barrier(len(phones) * 2)
    errors: list[BaseException] = []

    def post(citizen: Phone, body: str) -> None:
        try:
            form = inbound_form(citizen.number, body)
            barrier.wait()
            response = citizen.post(form)
            assert response.status_code == 200, response.get_data(as_text=True)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [
        threading.Thread(target=post, args=(citizen, body))
        for citizen in phones
        for body in ("4", "Hyvää palvelua")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    conversations = services_of(app).conversations
    for citizen in phones:
        transcript = conversations.transcript("sms", citizen.number)
        inbound = [m for m in transcript.messages if m.direction.value == "in"][1:]
        assert len(inbound) == 2
        # the one stored first answered the first question, the other the next one
        assert transcript.run is not None
        first, second = inbound[0].text, inbound[1].text
        by_step = {a.step_id: a.raw_text for a in transcript.answers}
        if first == "4":
            assert by_step == {"mood": "4", "comment": "Hyvää palvelua"}
            assert transcript.run.status.value == "completed"
        else:  # the comment arrived first: it was not a face, so it was re-prompted
            assert second == "4"
            assert by_step == {"mood": "4"}
        assert table_count(app, "flow_runs") == len(phones)


def test_storage_outage_answers_503_so_twilio_tries_again(
    clock: Clock, twilio_api: FakeTwilioAPI, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = make_app("postgresql+psycopg://postgres@127.0.0.1:9/nowhere", clock, twilio_api)
    try:
        with caplog.at_level(logging.WARNING, logger="palaute.web"):
            form = inbound_form("+358401000011", "HYMIÖ")
            response = Phone(unreachable, "+358401000011").post(form)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        [logged] = [r.getMessage() for r in caplog.records if r.name == "palaute.web"]
        assert f"Twilio inbound {form['MessageSid']}: nothing stored" in logged
    finally:
        services_of(unreachable).close()


def test_an_unmigrated_database_stores_nothing_so_acknowledges_nothing(
    empty_db_url: str, clock: Clock, twilio_api: FakeTwilioAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """A signed KIRJASTO against a database without tables: 500 (Twilio logs a failed
    webhook and calls the fallback URL), never a 200 that says it was handled."""
    empty = make_app(empty_db_url, clock, twilio_api)
    try:
        with caplog.at_level(logging.WARNING, logger="palaute.web"):
            form = inbound_form("+358401000011", "KIRJASTO")
            response = Phone(empty, "+358401000011").post(form)
            status = Phone(empty, "+358401000011").post(
                load_fixture("status_delivered.json"), path="/webhooks/twilio/status"
            )
        assert response.status_code == 500
        assert "<Message>" not in response.get_data(as_text=True)
        assert status.status_code == 500
        logged = [r.getMessage() for r in caplog.records if r.name == "palaute.web"]
        assert len(logged) == 2  # once per request, with the reason
        assert f"Twilio inbound {form['MessageSid']}: nothing stored" in logged[0]
        assert logged[1].startswith("Twilio status delivered for SM")
        assert all("run `palaute db upgrade`" in line for line in logged)
    finally:
        services_of(empty).close()


WELCOME_FLOW = """\
id: welcome-test
title: {fi: Testi, sv: Test, en: Test}
languages: [fi, sv, en]
default_language: fi
triggers:
  keywords: {fi: [TESTI], sv: [TESTA], en: [TEST]}
closing: {fi: Kiitos!, sv: Tack!, en: Thanks!}
steps:
  - id: welcome
    type: message
    text:
      fi: Hei! Kaksi lyhyttä kysymystä.
      sv: Hej! Två korta frågor.
      en: Hi! Two short questions.
  - id: overall
    type: scale
    scale: "1-5"
    text:
      fi: Miten meni? Vastaa 1-5.
      sv: Hur gick det? Svara 1-5.
      en: How was it? Reply 1-5.
  - id: again
    type: yes_no
    text:
      fi: Tuletko uudelleen?
      sv: Kommer du igen?
      en: Will you come again?
"""


def test_longer_replies_go_through_the_outbox_in_order(
    db_url: str, clock: Clock, twilio_api: FakeTwilioAPI, tmp_path: Any
) -> None:
    (tmp_path / "welcome-test.yaml").write_text(WELCOME_FLOW, encoding="utf-8")
    app = make_app(db_url, clock, twilio_api, flows_dir=tmp_path)
    citizen = phone(app, twilio_api, clock, "+358401000020")
    inline = citizen.send("TESTI")
    assert inline == ["Hei! Kaksi lyhyttä kysymystä."]  # the first reply in the TwiML ...
    (queued,) = twilio_api.sent_to(citizen.number)  # ... the next through the outbox
    assert queued["body"] == "Miten meni? Vastaa 1-5."
    assert queued["status_callback"].startswith(f"{PUBLIC}/webhooks/twilio/status?m=")
    assert citizen.received == ["Hei! Kaksi lyhyttä kysymystä.", "Miten meni? Vastaa 1-5."]
    citizen.send("5")
    citizen.send("kyllä")
    assert citizen.received[-1] == "Kiitos!"
    services_of(app).close()
