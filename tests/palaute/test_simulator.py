"""The /simulator page and its JSON API, through the real service and database."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.messages import Inbound
from palaute.config import Settings
from tests.palaute.simulator_support import Clock, close_app, make_app, stored_answers


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[Flask]:
    made = make_app(db_url, tmp_path / "flows", clock)
    yield made
    close_app(made)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def page_data(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="simulator-data">(.*?)</script>', html)
    assert found, "the page embeds its data"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def start(client: FlaskClient, flow: str, language: str) -> Any:
    response = client.post("/simulator/api/start", json={"flow": flow, "language": language})
    assert response.status_code == 200, response.json
    return response.json


def send(client: FlaskClient, text: str, kind: str = "text", msg_id: str | None = None) -> Any:
    body = {"text": text, "kind": kind}
    if msg_id is not None:
        body["id"] = msg_id
    response = client.post("/simulator/api/message", json=body)
    assert response.status_code == 200, response.json
    return response.json


def texts(result: Any) -> list[str]:
    return [message["text"] for message in result["messages"]]


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)  # page rendering only
def test_the_page_lists_flows_and_their_languages_in_the_chosen_ui_language(
    client: FlaskClient,
) -> None:
    swedish = client.get("/simulator?ui=sv")
    assert swedish.status_code == 200
    html = swedish.get_data(as_text=True)
    assert '<html lang="sv">' in html
    assert ">Starta</button>" in html
    assert "Bibliotekets testenkät" in html
    data = page_data(html)
    assert data["ui"] == "sv"
    flows = {flow["id"]: flow for flow in data["flows"]}
    assert flows["sim-test"]["title"] == "Bibliotekets testenkät"
    assert [lang["code"] for lang in flows["sim-test"]["languages"]] == ["fi", "sv", "en"]
    assert [lang["name"] for lang in flows["sim-test"]["languages"]] == [
        "suomi",
        "svenska",
        "English",
    ]
    # A flow without Swedish falls back to its default language for the title.
    assert flows["quick-poll"]["title"] == "Quick poll"
    assert flows["quick-poll"]["default_language"] == "en"

    english = client.get("/simulator", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert "Library test survey" in english.get_data(as_text=True)
    assert page_data(english.get_data(as_text=True))["t"]["start"] == "Start"

    api = client.get("/simulator/api/flows?ui=en").json
    assert [(f["id"], f["title"]) for f in api["flows"]] == [
        ("sim-test", "Library test survey"),
        ("quick-poll", "Quick poll"),
    ]

    default = client.get("/simulator")
    assert page_data(default.get_data(as_text=True))["ui"] == "fi"
    assert "Kirjaston testikysely" in default.get_data(as_text=True)


def test_a_whole_survey_is_answered_and_stored(client: FlaskClient, db_url: str) -> None:
    started = start(client, "sim-test", "sv")
    assert texts(started) == ["Hej! Tre korta frågor.", "Hur gick ditt besök? Svara 1–5."]
    assert [c["value"] for c in started["messages"][1]["choices"]] == ["1", "2", "3", "4", "5"]
    assert started["run"]["status"] == "active"
    assert started["run"]["current_step"] == "overall"
    assert started["run"]["answers"] == []

    low = send(client, "2", kind="button", msg_id="m1")
    assert texts(low) == ["Vad gick fel?"]
    assert low["messages"][0]["choices"] == []

    comment = send(client, "Lång kö", msg_id="m2")
    assert texts(comment) == ["Kommer du igen?"]
    assert {c["label"] for c in comment["messages"][0]["choices"]} == {"Ja", "Nej"}

    done = send(client, "nej", msg_id="m3")  # typed, not tapped
    assert texts(done) == ["Tack för dina svar!"]
    run = done["run"]
    assert run["status"] == "completed"
    assert run["flow_title"] == "Bibliotekets testenkät"
    assert [(a["step_id"], a["value"], a["raw_text"]) for a in run["answers"]] == [
        ("overall", 2, "2"),
        ("went_wrong", "Lång kö", "Lång kö"),
        ("again", "no", "nej"),
    ]
    assert run["answers"][0]["question"] == "Hur gick ditt besök? Svara 1–5."

    assert stored_answers(db_url) == [
        ("simulator", "sim-test", "overall", 2, None, "2", "sv", False),
        ("simulator", "sim-test", "went_wrong", None, "Lång kö", "Lång kö", "sv", False),
        ("simulator", "sim-test", "again", None, "no", "nej", "sv", False),
    ]  # fmt: skip


def test_a_reload_shows_the_latest_run_with_button_labels(client: FlaskClient) -> None:
    start(client, "sim-test", "fi")
    send(client, "5", kind="button")
    send(client, "Hiljainen lukusali")
    send(client, "yes", kind="button")

    transcript = client.get("/simulator/api/transcript").json
    assert [(m["direction"], m["text"]) for m in transcript["messages"]] == [
        ("out", "Hei! Kolme lyhyttä kysymystä."),
        ("out", "Miten käyntisi onnistui? Vastaa 1–5."),
        ("in", "5"),
        ("out", "Mistä pidit?"),
        ("in", "Hiljainen lukusali"),
        ("out", "Tuletko uudelleen?"),
        ("in", "Kyllä"),  # the tapped button's label, as the citizen saw it
        ("out", "Kiitos vastauksistasi!"),
    ]
    assert transcript["run"]["status"] == "completed"

    unknown = client.application.test_client().get("/simulator/api/transcript").json
    assert unknown == {"messages": [], "run": None}  # another browser


def test_start_over_begins_a_new_run_and_keeps_the_old_answers(
    client: FlaskClient, db_url: str
) -> None:
    start(client, "sim-test", "en")
    send(client, "4")
    again = start(client, "sim-test", "en")
    assert texts(again)[-1] == "How was your visit? Reply 1–5."
    assert again["run"]["answers"] == []
    assert again["run"]["status"] == "active"
    transcript = client.get("/simulator/api/transcript").json
    assert [m["text"] for m in transcript["messages"]] == [
        "Hi! Three short questions.",
        "How was your visit? Reply 1–5.",
    ]
    assert [row[2:4] for row in stored_answers(db_url)] == [("overall", 4)]


def test_the_language_chosen_at_start_wins_over_the_remembered_one(
    client: FlaskClient, db_url: str
) -> None:
    start(client, "sim-test", "fi")
    send(client, "4")  # the contact now remembers Finnish
    swedish = start(client, "sim-test", "sv")
    assert texts(swedish) == ["Hej! Tre korta frågor.", "Hur gick ditt besök? Svara 1–5."]
    assert swedish["run"]["language"] == "sv"  # the badge
    send(client, "5")
    assert [row[6] for row in stored_answers(db_url)] == ["fi", "sv"]
    # No language chosen: the remembered one (now Swedish), not the flow's default.
    response = client.post("/simulator/api/start", json={"flow": "sim-test"})
    assert response.status_code == 200, response.json
    assert response.json["run"]["language"] == "sv"
    assert texts(response.json)[0] == "Hej! Tre korta frågor."


def test_each_browser_session_is_its_own_contact(app: Flask, client: FlaskClient) -> None:
    other_browser = app.test_client()
    start(client, "sim-test", "fi")
    start(other_browser, "quick-poll", "en")
    reply = send(client, "3", kind="button")
    assert texts(reply) == ["Mistä pidit?"]
    other = other_browser.get("/simulator/api/transcript").json
    assert other["run"]["flow_id"] == "quick-poll"
    assert other["run"]["answers"] == []


def test_a_resent_message_is_answered_again_but_stored_once(
    client: FlaskClient, db_url: str
) -> None:
    start(client, "sim-test", "fi")
    first = send(client, "4", kind="button", msg_id="same-id")
    second = send(client, "4", kind="button", msg_id="same-id")
    assert first["duplicate"] is False
    assert second["duplicate"] is True
    assert texts(second) == texts(first) == ["Mistä pidit?"]
    assert [row[2:4] for row in stored_answers(db_url)] == [("overall", 4)]


def test_a_run_left_too_long_is_closed_as_incomplete(client: FlaskClient, clock: Clock) -> None:
    start(client, "sim-test", "fi")
    send(client, "4")
    clock.advance(timedelta(hours=25))
    late = send(client, "Kiva paikka")
    assert late["run"]["status"] != "active"
    assert [a["step_id"] for a in late["run"]["answers"]] == ["overall"]


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)  # validation only
@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        ({"text": 4}, 400, "text"),
        ({"text": "x" * 2001}, 400, "text"),
        ({"text": "4", "kind": "photo"}, 400, "kind"),
        ({"text": "", "kind": "button"}, 400, "text"),
        ({"text": "4", "id": "no spaces please"}, 400, "id"),
        (["not", "an", "object"], 400, "JSON object"),
    ],
)
def test_malformed_messages_are_refused_with_the_reason(
    client: FlaskClient, db_url: str, body: Any, status: int, problem: str
) -> None:
    client.get("/simulator")  # the page issues this browser's contact
    response = client.post("/simulator/api/message", json=body)
    assert response.status_code == status
    assert problem in response.json["error"]
    assert response.json["retryable"] is False
    assert stored_answers(db_url) == []


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)  # validation only
def test_bad_start_requests_say_what_to_do(client: FlaskClient) -> None:
    unknown = client.post("/simulator/api/start", json={"flow": "nope", "language": "fi"})
    assert unknown.status_code == 404
    assert "quick-poll, sim-test" in unknown.json["error"]

    language = client.post("/simulator/api/start", json={"flow": "quick-poll", "language": "sv"})
    assert language.status_code == 400
    assert "choose one of en, fi" in language.json["error"]

    not_json = client.post("/simulator/api/start", data="flow=sim-test")
    assert not_json.status_code == 415

    wrong_method = client.get("/simulator/api/start")
    assert wrong_method.status_code == 405
    assert "error" in wrong_method.json


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_an_unmigrated_database_is_reported_to_the_page(empty_db_url: str, tmp_path: Path) -> None:
    app = make_app(empty_db_url, tmp_path / "flows")
    try:
        response = app.test_client().post(
            "/simulator/api/start", json={"flow": "sim-test", "language": "fi"}
        )
    finally:
        close_app(app)
    assert response.status_code == 500
    assert "palaute db upgrade" in response.json["error"]
    assert response.json["retryable"] is False


# --------------------------------------------------------------------------- exposure


def contact_in_cookie(app: Flask, client: FlaskClient) -> str:
    """The contact the server put in this browser's signed session cookie."""
    cookie = client.get_cookie("session")
    assert cookie is not None, "the server issues a session cookie"
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    contact: str = serializer.loads(cookie.value)["simulator_contact"]
    return contact


def test_a_client_chosen_session_id_reads_and_writes_nothing_of_that_contact(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    """Before: whoever sent {"session": "aaaaaaaa"} read that contact's transcript."""
    conversations = app.extensions["palaute"].conversations
    conversations.start("simulator", "aaaaaaaa", "sim-test", now=clock(), language="fi")
    for text in ("2", "Salainen vapaa vastaus"):
        conversations.handle(Inbound(channel="simulator", address="aaaaaaaa", text=text), clock())

    page = client.get("/simulator?session=aaaaaaaa").get_data(as_text=True)
    peek = client.get("/simulator/api/transcript?session=aaaaaaaa")
    assert peek.status_code == 200
    assert "Salainen" not in peek.get_data(as_text=True) + page
    assert peek.json == {"messages": [], "run": None}

    sent = client.post(
        "/simulator/api/message", json={"session": "aaaaaaaa", "text": "Kolmas", "id": "x1"}
    )
    assert sent.status_code == 200
    assert "Salainen" not in sent.get_data(as_text=True)
    transcript = conversations.transcript("simulator", "aaaaaaaa")
    assert [m.text for m in transcript.messages if m.text == "Kolmas"] == []  # not written there
    assert contact_in_cookie(app, client) != "aaaaaaaa"


def test_the_contact_is_a_random_server_issued_session_in_an_httponly_cookie(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    page = client.get("/simulator")
    set_cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    contact = contact_in_cookie(app, client)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", contact)  # 32 random bytes = 256 bits

    bodies = [page.get_data(as_text=True)]
    started = client.post("/simulator/api/start", json={"flow": "sim-test", "language": "fi"})
    bodies.append(started.get_data(as_text=True))
    bodies.append(send(client, "4").__repr__())
    bodies.append(client.get("/simulator/api/transcript").get_data(as_text=True))
    assert contact_in_cookie(app, client) == contact  # the same contact all along
    assert all(contact not in body for body in bodies)  # never in a page or JSON body
    assert all(contact not in record.getMessage() for record in caplog.records)
    assert page_data(bodies[0])["api"]["transcript"] == "/simulator/api/transcript"  # no id

    other = app.test_client()
    other.get("/simulator")
    assert contact_in_cookie(app, other) != contact

    renewed = client.post("/simulator/api/new-contact", json={})
    assert renewed.status_code == 200
    assert contact_in_cookie(app, client) != contact
    assert client.get("/simulator/api/transcript").json == {"messages": [], "run": None}
    assert renewed.json["contact"] in client.get("/simulator").get_data(as_text=True)


def test_a_forged_malformed_contact_in_the_cookie_is_replaced(
    app: Flask, client: FlaskClient
) -> None:
    """With a known SECRET_KEY a cookie can be forged; an id we would never issue is not
    used (a forged 256-bit one names a contact nobody else has)."""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    client.set_cookie("session", serializer.dumps({"simulator_contact": "aaaaaaaa"}))
    assert client.get("/simulator/api/transcript").json == {"messages": [], "run": None}
    refused = client.post("/simulator/api/message", json={"text": "4"})
    assert refused.status_code == 400
    assert "reload the page" in refused.json["error"]
    client.get("/simulator")
    assert contact_in_cookie(app, client) != "aaaaaaaa"


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_starts_are_rate_limited_per_client_address(db_url: str, tmp_path: Path) -> None:
    app = make_app(db_url, tmp_path / "flows", SIMULATOR_START_LIMIT="3 per minute")
    try:
        client = app.test_client()
        body = {"flow": "quick-poll", "language": "en"}
        codes = [client.post("/simulator/api/start", json=body).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        renew = client.post("/simulator/api/new-contact", json={})  # shares the start limit
        assert renew.status_code == 429
        assert renew.json["retryable"] is True
        assert "too many requests" in renew.json["error"]
        assert int(renew.headers["Retry-After"]) > 0
        assert client.post("/simulator/api/start", json=body).status_code == 429
        elsewhere = app.test_client()
        elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
        assert elsewhere.post("/simulator/api/start", json=body).status_code == 200
    finally:
        close_app(app)


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_a_bad_rate_limit_setting_stops_the_app_with_the_setting_named(
    db_url: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="SIMULATOR_START_LIMIT='lots' is not a rate limit"):
        make_app(db_url, tmp_path / "flows", SIMULATOR_START_LIMIT="lots")


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_the_simulator_is_off_unless_enabled(db_url: str, tmp_path: Path) -> None:
    app = make_app(db_url, tmp_path / "flows", SIMULATOR_ENABLED=False)
    try:
        client = app.test_client()
        assert client.get("/simulator").status_code == 404
        # The front door is then the staff pages, which ask for a sign-in.
        front = client.get("/")
        assert front.status_code == 302 and front.location.endswith("/dashboard/")
        started = client.post("/simulator/api/start", json={"flow": "sim-test"})
        assert started.status_code == 404
        assert client.get("/healthz").status_code == 200
    finally:
        close_app(app)
    # The Procfile's gunicorn reads the environment only: off unless SIMULATOR_ENABLED.
    assert Settings.model_fields["simulator_enabled"].default is False
