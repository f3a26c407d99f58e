"""The app factory, /healthz, `palaute serve`, the Procfile and the README's settings table."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from bot.flow_problems import FlowError
from palaute.app import create_app
from palaute.cli import main
from palaute.config import Settings
from tests.palaute.simulator_support import close_app, make_app, write_flows

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_healthz_is_ok_on_a_migrated_database(db_url: str, tmp_path: Path) -> None:
    app = make_app(db_url, tmp_path / "flows")
    try:
        response = app.test_client().get("/healthz")
    finally:
        close_app(app)
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    assert response.json["flows"] == 2
    assert response.json["database"] in ("sqlite", "postgresql")


def test_healthz_says_to_migrate_an_empty_database(empty_db_url: str, tmp_path: Path) -> None:
    app = make_app(empty_db_url, tmp_path / "flows")
    try:
        response = app.test_client().get("/healthz")
    finally:
        close_app(app)
    assert response.status_code == 503
    assert response.json["status"] == "error"
    assert "palaute db upgrade" in response.json["error"]


def test_the_app_is_built_without_a_database_and_healthz_reports_it(tmp_path: Path) -> None:
    # Nothing connects while the app is built: a dead PostgreSQL only shows in /healthz.
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing?connect_timeout=2"
    app = make_app(dead, tmp_path / "flows")
    try:
        response = app.test_client().get("/healthz")
    finally:
        close_app(app)
    assert response.status_code == 503
    assert response.json["error"].startswith("database unreachable")


def test_a_broken_flow_stops_the_app_with_file_and_line(tmp_path: Path) -> None:
    flows = write_flows(tmp_path / "flows")
    (flows / "broken.yaml").write_text(
        "id: broken\ntitle: {fi: Rikki}\nlanguages: [fi]\ndefault_language: fi\n"
        "closing: {fi: Kiitos}\nsteps:\n  - id: q\n    type: choise\n    text: {fi: Mitä}\n",
        encoding="utf-8",
    )
    with pytest.raises(FlowError) as caught:
        create_app({"TESTING": True, "DATABASE_URL": "sqlite://", "FLOWS_DIR": flows})
    assert "broken.yaml:8" in str(caught.value)


def test_settings_come_from_the_environment_unless_the_test_config_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flows = write_flows(tmp_path / "flows")
    monkeypatch.setenv("FLOWS_DIR", str(flows))
    monkeypatch.setenv("ORGANISATION_NAME", "Kaarinan kirjasto")
    monkeypatch.setenv("SIMULATOR_ENABLED", "true")
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})
    try:
        settings = app.extensions["palaute"].settings
        assert settings.organisation_name == "Kaarinan kirjasto"
        assert settings.database_url.endswith("x.sqlite3")
        assert "<title>Keskustelusimulaattori · Kaarinan kirjasto</title>" in (
            app.test_client().get("/simulator?ui=fi").get_data(as_text=True)
        )
    finally:
        close_app(app)


def test_the_readme_documents_every_setting() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in readme]
    assert missing == [], f"add these to the README's configuration table: {missing}"
    assert readme.index("make run") < readme.index("## Configuration")
    assert readme.index("make test") < readme.index("## Configuration")


def test_the_procfile_runs_the_app_factory_and_the_clock() -> None:
    assert (REPO / "Procfile").read_text(encoding="utf-8") == (
        'web: gunicorn "palaute.app:create_app()"\nclock: palaute clock\n'
    )


def test_serve_help_says_which_server_runs() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "gunicorn" in result.output
    assert "--dev" in result.output
    assert "Werkzeug" in result.output


def wait_for(url: str, process: subprocess.Popen[str], seconds: float = 30) -> requests.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"the server exited with {process.returncode}:\n{output}")
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer within {seconds} s")


@pytest.mark.parametrize("mode", [["--workers", "1", "--threads", "2"], ["--dev"]])
def test_palaute_serve_answers_healthz_and_the_simulator(
    mode: list[str], tmp_path: Path, sqlite_template: Path
) -> None:
    database = tmp_path / "serve.sqlite3"
    database.write_bytes(sqlite_template.read_bytes())
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "FLOWS_DIR": str(write_flows(tmp_path / "flows")),
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "palaute"), "serve", "--port", str(port), *mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = wait_for(f"http://127.0.0.1:{port}/healthz", process)
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "ok"
        page = requests.get(
            f"http://127.0.0.1:{port}/simulator", headers={"Accept-Language": "sv"}, timeout=5
        )
        assert page.status_code == 200
        assert "Bibliotekets testenkät" in page.text
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert process.returncode in (0, -signal.SIGTERM), output
    expected = "Werkzeug" if "--dev" in mode else "gunicorn"
    assert expected in output


@pytest.mark.parametrize("mode", [[], ["--dev"]])
def test_serve_on_a_busy_port_says_which_port_and_how_to_pick_another(
    mode: list[str], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(
            [str(Path(sys.executable).parent / "palaute"), "serve", "--port", str(port), *mode],
            env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "PORT=8080 make run" in result.stderr
    assert "Address already in use" not in result.stdout + result.stderr  # not gunicorn's
    assert time.monotonic() - started < 20  # no retries


@pytest.mark.parametrize(
    ("environment", "expected"),
    [(None, {"SIMULATOR_ENABLED": True}), ("false", {}), ("true", {}), ("0", {})],
)
def test_serve_turns_the_simulator_on_unless_the_environment_says(
    environment: str | None, expected: dict[str, bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    from palaute.commands.serve import simulator_default

    monkeypatch.delenv("SIMULATOR_ENABLED", raising=False)
    if environment is not None:
        monkeypatch.setenv("SIMULATOR_ENABLED", environment)
    assert simulator_default() == expected


def test_the_front_page_leads_to_the_simulator(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'x.sqlite3'}", tmp_path / "flows")
    try:
        response = app.test_client().get("/")
    finally:
        close_app(app)
    assert response.status_code == 302
    assert response.location == "/simulator"


def test_sessions_still_work_for_pages_that_use_them(tmp_path: Path) -> None:
    """Requests without a session cookie (webhooks) skip the cookie signer; a page that
    writes the session still gets a signed cookie back, and reads it next time."""
    from flask import session

    app = make_app(f"sqlite:///{tmp_path / 'x.sqlite3'}", tmp_path / "flows")

    def remember() -> str:
        session["seen"] = session.get("seen", 0) + 1
        return str(session["seen"])

    app.add_url_rule("/_remember", "remember", remember)
    try:
        client = app.test_client()
        assert client.get("/_remember").text == "1"
        cookie = client.get_cookie("session")
        assert cookie is not None and cookie.value.count(".") == 2  # itsdangerous-signed
        assert client.get("/_remember").text == "2"
        client.set_cookie("session", "forged.value.here")
        assert client.get("/_remember").text == "1"  # a bad signature: a fresh session
        assert app.test_client().get("/healthz").headers.get("Set-Cookie") is None
    finally:
        close_app(app)
