"""Hostile and broken requests on every JSON endpoint: oversized bodies get 413 before they
are read, broken JSON gets 400 with a reason, control characters are cleaned at the
boundary so PostgreSQL never sees a NUL. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder, run_wsgi_app

from fakes.telegram_api import load_fixture
from palaute.app import create_app
from storage.db import make_engine
from tests.palaute.simulator_support import close_app, make_app, stored_answers
from tests.service.followup_support import SECRET, make_token

REPO_FLOWS = Path(__file__).resolve().parents[2] / "flows"
TELEGRAM_SECRET = "hostile-tests-secret"


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    made = make_app(
        db_url,
        tmp_path / "flows",
        TELEGRAM_WEBHOOK_SECRET=TELEGRAM_SECRET,
        ADDRESS_KEY_SECRET=SECRET,
    )
    yield made
    close_app(made)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def token(db_url: str) -> str:
    engine = make_engine(db_url)
    try:
        return make_token(engine)
    finally:
        engine.dispose()


def headers_for(path: str, token: str) -> dict[str, str]:
    if path == "/webhooks/telegram":
        return {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    if path == "/api/visits":
        return {"Authorization": f"Bearer {token}"}
    return {}


JSON_ENDPOINTS = ["/webhooks/telegram", "/api/visits", "/simulator/api/message"]


class Endless(io.RawIOBase):
    """A huge request body, counting what the app reads of it.

    It ends after ``cap`` bytes (a little over the limit), so that an app without the
    limit fails the test instead of reading until the machine runs out of memory.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), self.cap - self.read_bytes)
        buffer[:size] = b" " * size
        self.read_bytes += size
        return size


# --- 4. request size limits ---------------------------------------------------------------

LIMITS = [
    ("/webhooks/telegram", 256 * 1024),
    ("/webhooks/twilio/sms", 256 * 1024),
    ("/api/visits", 2 * 1024 * 1024),
    ("/simulator/api/message", 64 * 1024),
    ("/simulator/api/start", 64 * 1024),
]


def post_endless(
    client: FlaskClient, path: str, token: str, limit: int, declared: int | None
) -> tuple[Any, Endless]:
    """POST a body larger than ``limit``; ``declared`` None sends it chunked."""
    body = Endless(cap=limit + 1024 * 1024)
    environ = EnvironBuilder(
        path=path, method="POST", content_type="application/json", headers=headers_for(path, token)
    ).get_environ()
    environ["wsgi.input"] = io.BufferedReader(body)
    if declared is None:
        environ.pop("CONTENT_LENGTH", None)
        environ["wsgi.input_terminated"] = True  # as gunicorn says for a chunked body
    else:
        environ["CONTENT_LENGTH"] = str(declared)
    app_iter, status, _headers = run_wsgi_app(client.application, environ)
    response = SimpleNamespace(
        status_code=int(status.split()[0]), json=json.loads(b"".join(app_iter))
    )
    return response, body


@pytest.mark.parametrize(("path", "limit"), LIMITS)
def test_a_body_declared_too_large_is_refused_unread(
    client: FlaskClient, token: str, path: str, limit: int
) -> None:
    response, body = post_endless(client, path, token, limit, declared=200 * 1024 * 1024)
    assert response.status_code == 413
    assert f"larger than {limit} bytes" in response.json["error"]
    assert body.read_bytes == 0


@pytest.mark.parametrize(("path", "limit"), LIMITS)
def test_a_chunked_body_is_cut_off_at_the_limit(
    client: FlaskClient, token: str, path: str, limit: int
) -> None:
    response, body = post_endless(client, path, token, limit, declared=None)
    assert response.status_code == 413
    assert f"larger than {limit} bytes" in response.json["error"]
    assert body.read_bytes <= limit + 64 * 1024  # the limit plus one read buffer


def test_each_limit_is_a_setting(db_url: str, tmp_path: Path) -> None:
    app = make_app(db_url, tmp_path / "flows", MAX_CONTENT_LENGTH=100)
    try:
        client = app.test_client()
        started = client.post("/simulator/api/start", json={"flow": "sim-test"})
        small = client.post("/simulator/api/message", json={"text": "x"})
        large = client.post("/simulator/api/message", json={"text": "x" * 100})
    finally:
        close_app(app)
    assert started.status_code == 200, started.json
    assert small.status_code == 200, small.json
    assert large.status_code == 413
    assert "MAX_CONTENT_LENGTH" in large.json["error"]


# --- 5. broken JSON -----------------------------------------------------------------------

BROKEN_JSON = [
    ("deep nesting", b"[" * 20_000 + b"]" * 20_000, "nests deeper than 32 levels"),
    ("nesting under the parser's limit", b"[" * 900 + b"]" * 900, "nests deeper than"),
    ("NaN", b'{"text": NaN, "session": "hostile-session-1"}', "NaN is not a JSON number"),
    ("Infinity", b'{"update_id": Infinity}', "Infinity is not a JSON number"),
    ("overflow to inf", b'{"update_id": 1, "x": 1e400}', "the number 1e400 is too large"),
    ("invalid UTF-8", b'{"text": "\xff\xfe"}', "not UTF-8"),
    ("not JSON", b"{'text': 1}", "not valid JSON"),
    ("huge integer", b'{"update_id": 1' + b"0" * 5000 + b"}", "too many digits"),
]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize(
    ("body", "reason"), [(b, r) for _, b, r in BROKEN_JSON], ids=[n for n, _, _ in BROKEN_JSON]
)
def test_broken_json_gets_400_with_the_reason(
    client: FlaskClient, token: str, path: str, body: bytes, reason: str
) -> None:
    response = client.post(
        path, data=body, content_type="application/json", headers=headers_for(path, token)
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert reason in response.json["error"]


@pytest.mark.parametrize("path", ["/webhooks/telegram", "/simulator/api/message"])
@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "null", "3"])
def test_a_body_that_must_be_an_object_is_one(
    client: FlaskClient, token: str, path: str, body: str
) -> None:
    response = client.post(
        path, data=body, content_type="application/json", headers=headers_for(path, token)
    )
    assert response.status_code == 400
    assert "must be a JSON object" in response.json["error"]


# --- 7. control characters ----------------------------------------------------------------


def test_simulator_text_with_nul_is_stored_without_it(client: FlaskClient, db_url: str) -> None:
    started = client.post("/simulator/api/start", json={"flow": "sim-test", "language": "en"})
    assert started.status_code == 200
    assert client.post("/simulator/api/message", json={"text": "4"}).json
    answered = client.post("/simulator/api/message", json={"text": "Kind\x00 staff\x07"})
    assert answered.status_code == 200, answered.get_data(as_text=True)
    liked = [row for row in stored_answers(db_url) if row[2] == "liked"]
    assert [row[5] for row in liked] == ["Kind staff"]


def test_telegram_text_with_nul_starts_the_survey(db_url: str) -> None:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "FLOWS_DIR": REPO_FLOWS,
            "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        }
    )
    try:
        update = load_fixture("message_text")
        update["message"]["text"] = "KIRJ\x00ASTO"
        response = app.test_client().post(
            "/webhooks/telegram",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
        )
    finally:
        close_app(app)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["method"] == "sendMessage"
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            texts = connection.execute(
                sa.text("SELECT text FROM messages WHERE direction = 'in'")
            ).scalars()
            assert list(texts) == ["KIRJASTO"]
    finally:
        engine.dispose()
