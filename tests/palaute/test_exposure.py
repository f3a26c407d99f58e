"""What an outsider can learn or forge: production secrets, the URL Twilio signatures are
checked against, what anonymous error bodies say, and the headers HTML pages carry."""

from __future__ import annotations

import os
import runpy
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from channels.twilio.signature import compute_signature
from fakes.twilio_api import AUTH_TOKEN
from palaute.config import UnsafeConfiguration
from tests.palaute.simulator_support import close_app, make_app
from tests.palaute.sms_support import Clock, inbound_form
from tests.palaute.sms_support import make_app as make_sms_app

GOOD_SECRET = "k" * 32


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- 9. PALAUTE_ENV=production refuses default and short secrets ---------------------------

REFUSED = [
    ("default SECRET_KEY", {"ADDRESS_KEY_SECRET": GOOD_SECRET}, "SECRET_KEY is the development"),
    ("default ADDRESS_KEY_SECRET", {"SECRET_KEY": GOOD_SECRET}, "ADDRESS_KEY_SECRET is the dev"),
    (
        "short SECRET_KEY",
        {"SECRET_KEY": "k" * 31, "ADDRESS_KEY_SECRET": GOOD_SECRET},
        "SECRET_KEY is shorter than 32 bytes",
    ),
    (
        "short ADDRESS_KEY_SECRET",
        {"SECRET_KEY": GOOD_SECRET, "ADDRESS_KEY_SECRET": "short"},
        "ADDRESS_KEY_SECRET is shorter than 32 bytes",
    ),
]


@pytest.mark.parametrize(
    ("secrets", "problem"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_production_refuses_to_start_with_unsafe_secrets(
    tmp_path: Path, secrets: dict[str, str], problem: str
) -> None:
    with pytest.raises(UnsafeConfiguration) as refused:
        make_app("sqlite://", tmp_path / "flows", PALAUTE_ENV="production", **secrets)
    assert problem in str(refused.value)
    assert "secrets.token_urlsafe" in str(refused.value)  # how to make one


def test_production_starts_with_long_secrets_and_warns_without_a_public_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(
        "sqlite://",
        tmp_path / "flows",
        PALAUTE_ENV="production",
        SECRET_KEY=GOOD_SECRET,
        ADDRESS_KEY_SECRET="ä" * 16,  # 32 bytes in UTF-8
    )
    close_app(app)
    assert "PUBLIC_BASE_URL is not set" in caplog.text


def test_development_accepts_the_defaults(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    close_app(make_app("sqlite://", tmp_path / "flows"))
    assert "PUBLIC_BASE_URL" not in caplog.text


def test_the_clock_refuses_unsafe_secrets_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from palaute.cli import main

    monkeypatch.setenv("PALAUTE_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    result = CliRunner().invoke(main, ["clock", "--once"])
    assert result.exit_code != 0
    assert "SECRET_KEY is the development default" in result.output


def test_gunicorn_config_makes_production_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    config = str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py")
    monkeypatch.setenv("PALAUTE_ENV", "")  # so that monkeypatch removes it afterwards
    monkeypatch.delenv("PALAUTE_ENV")
    runpy.run_path(config)
    assert os.environ["PALAUTE_ENV"] == "production"
    monkeypatch.setenv("PALAUTE_ENV", "development")  # an explicit choice is kept
    runpy.run_path(config)
    assert os.environ["PALAUTE_ENV"] == "development"


# --- 11. one source of truth for the URL Twilio signed -----------------------------------


@pytest.fixture
def proxied_app(db_url: str) -> Iterator[Flask]:
    app = make_sms_app(db_url, Clock(), public_base_url=None, trust_forwarded_headers=True)
    yield app
    close_app(app)


def post_signed(app: Flask, signed_url: str, headers: dict[str, str]) -> int:
    form = inbound_form("+358401000077", "STOP")
    signature = compute_signature(AUTH_TOKEN, signed_url, form)
    response = app.test_client().post(
        "/webhooks/twilio/sms",
        data=form,
        headers={"X-Twilio-Signature": signature, "X-Forwarded-Proto": "https", **headers},
    )
    return response.status_code


# The client sent X-Forwarded-Host: other.example; our proxy appended the real host.
SPOOFED = {"X-Forwarded-Host": "other.example, kysely.example.fi"}


def test_a_spoofed_leftmost_forwarded_host_is_not_trusted(proxied_app: Flask) -> None:
    assert post_signed(proxied_app, "https://other.example/webhooks/twilio/sms", SPOOFED) == 403


def test_a_forwarded_prefix_is_not_trusted(proxied_app: Flask) -> None:
    signed_url = "https://kysely.example.fi/elsewhere/webhooks/twilio/sms"
    headers = {"X-Forwarded-Host": "kysely.example.fi", "X-Forwarded-Prefix": "/elsewhere"}
    assert post_signed(proxied_app, signed_url, headers) == 403


def test_the_host_our_proxy_appended_is_the_one_checked(proxied_app: Flask) -> None:
    assert post_signed(proxied_app, "https://kysely.example.fi/webhooks/twilio/sms", SPOOFED) == 200


# --- 13. anonymous error bodies and page headers -------------------------------------------


def test_healthz_and_the_simulator_name_no_database_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{port}/secretdb?connect_timeout=2"
    app = make_app(dead, tmp_path / "flows")
    try:
        client = app.test_client()
        health = client.get("/healthz")
        started = client.post(
            "/simulator/api/start",
            json={"session": "exposure-test-1", "flow": "sim-test", "language": "fi"},
        )
    finally:
        close_app(app)
    assert health.status_code == 503
    assert health.json["error"] == "database unreachable"
    assert started.status_code == 503
    assert started.json["retryable"] is True
    for body in (health.get_data(as_text=True), started.get_data(as_text=True)):
        assert str(port) not in body and "127.0.0.1" not in body and "secretdb" not in body
    assert str(port) in caplog.text  # the operators still get the detail


def test_api_visits_names_no_database_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{port}/secretdb?connect_timeout=2"
    app = make_app(dead, tmp_path / "flows")
    try:
        response = app.test_client().post(
            "/api/visits", json={}, headers={"Authorization": "Bearer plt_guess"}
        )
    finally:
        close_app(app)
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert str(port) not in body and "127.0.0.1" not in body and "secretdb" not in body
    assert str(port) in caplog.text


def test_healthz_fails_when_the_database_refuses_writes(
    db_url: str, tmp_path: Path, db_backend: str
) -> None:
    if db_backend == "sqlite":
        path = db_url.removeprefix("sqlite:///")
        read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    else:  # every transaction of this URL's sessions is read-only, as on a standby
        read_only = db_url + "?options=-c%20default_transaction_read_only%3Don"
    app = make_app(read_only, tmp_path / "flows")
    try:
        response = app.test_client().get("/healthz")
    finally:
        close_app(app)
    assert response.status_code == 503
    assert response.json["error"] == "database read-only (writes fail)"


def test_html_pages_forbid_framing_and_foreign_scripts(tmp_path: Path) -> None:
    app = make_app("sqlite://", tmp_path / "flows")
    try:
        client = app.test_client()
        page = client.get("/simulator")
        api = client.get("/simulator/api/flows")
    finally:
        close_app(app)
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in api.headers  # JSON is never rendered
