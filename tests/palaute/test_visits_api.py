"""POST /api/visits: bearer tokens, single and batch visits, idempotency, per-row errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from palaute.app import create_app
from storage import api_tokens as token_store
from storage.db import make_engine, transaction
from tests.service.followup_support import SECRET, followup_rows, make_token, write_flows

NOW = datetime(2026, 6, 2, 7, 0, tzinfo=UTC)  # Tuesday 10:00 in Helsinki


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    flows = write_flows(tmp_path / "flows")
    made = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "FLOWS_DIR": flows,
            "ADDRESS_KEY_SECRET": SECRET,
            "ORGANISATION_TIMEZONE": "Europe/Helsinki",
            "CLOCK": lambda: NOW,
        }
    )
    yield made
    made.extensions["palaute"].close()


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def post(client: FlaskClient, token: str | None, body: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/visits", json=body, headers=headers)


VISIT = {
    "external_id": "A-1001",
    "visit_at": "2026-06-02T10:15:00+03:00",
    "phone": "040 123 4567",
    "service_point": "kallio",
    "language": "fi",
}


def test_single_visit_is_scheduled_two_hours_later(client: FlaskClient, db: Engine) -> None:
    token = make_token(db)
    response = post(client, token, VISIT)
    assert response.status_code == 200, response.json
    [result] = response.json["results"]
    assert result["status"] == "scheduled"
    assert result["due_at"] == "2026-06-02T09:15:00+00:00"  # 12:15 in Helsinki
    [row] = followup_rows(db)
    assert (row["external_id"], row["kind"], row["status"]) == ("A-1001", "first", "scheduled")
    assert row["source"] == "his"  # the token's name when the body names no source
    assert row["timezone"] == "Europe/Helsinki"
    assert row["contact_id"] is not None and row["language"] == "fi"


def test_same_visit_twice_schedules_once(client: FlaskClient, db: Engine) -> None:
    token = make_token(db)
    assert post(client, token, VISIT).json["results"][0]["status"] == "scheduled"
    again = post(client, token, dict(VISIT, phone="+358401234567"))
    assert again.status_code == 200, again.json
    assert again.json["results"][0]["status"] == "duplicate"
    assert len(followup_rows(db)) == 1


def test_batch_with_bad_rows_keeps_the_good_ones(client: FlaskClient, db: Engine) -> None:
    token = make_token(db, source="apotti")
    batch = [
        VISIT,
        {"external_id": "A-1002", "visit_at": "yesterday", "phone": "0401234568"},
        {"visit_at": "2026-06-02T10:30:00+03:00", "phone": "0401234569"},
        {"external_id": "A-1004", "visit_at": "2026-06-02T10:30:00+03:00", "phone": "12"},
        {"external_id": "A-1005", "visit_at": "2026-06-02T10:30:00+03:00"},
        {"external_id": "A-1006", "visit_at": "2026-06-02T10:30:00", "phone": "0401234570"},
        {
            "external_id": "A-1007",
            "visit_at": "2026-06-02T10:30:00+03:00",
            "phone": "040 123 4571",
            "flow": "nope",
        },
        "not an object",
    ]
    response = post(client, token, {"visits": batch, "source": "apotti"})
    assert response.status_code == 207
    results = response.json["results"]
    assert [r["status"] for r in results] == [
        "scheduled", "error", "error", "skipped", "skipped", "error", "error", "error",
    ]  # fmt: skip
    assert results[1]["errors"][0]["field"] == "visit_at"
    assert "is not a date and time" in results[1]["errors"][0]["message"]
    assert results[2]["errors"] == [
        {"field": "external_id", "message": "missing: every visit needs its own id"}
    ]
    assert results[3]["skip_reason"] == "invalid_number"
    assert results[4]["skip_reason"] == "no_channel"
    assert "no UTC offset" in results[5]["errors"][0]["message"]
    assert "no flow 'nope'" in results[6]["errors"][0]["message"]
    assert response.json["summary"] == {"scheduled": 1, "error": 5, "skipped": 2}
    stored = {(r["external_id"], r["status"], r["skip_reason"]) for r in followup_rows(db)}
    assert stored == {
        ("A-1001", "scheduled", None),
        ("A-1004", "skipped", "invalid_number"),
        ("A-1005", "skipped", "no_channel"),
    }
    assert {r["source"] for r in followup_rows(db)} == {"apotti"}


def test_all_rows_invalid_is_422(client: FlaskClient, db: Engine) -> None:
    token = make_token(db)
    response = post(client, token, [{"external_id": "x"}])
    assert response.status_code == 422
    assert followup_rows(db) == []


def test_time_zone_from_the_phone_number_country(client: FlaskClient, db: Engine) -> None:
    token = make_token(db)
    visit = dict(VISIT, external_id="NY-1", phone="+1 212 555 0123", language="en")
    visit["visit_at"] = "2026-06-02T16:00:00Z"  # 12:00 in New York
    response = post(client, token, visit)
    assert response.json["results"][0]["due_at"] == "2026-06-02T18:00:00+00:00"
    assert followup_rows(db)[0]["timezone"] == "America/New_York"


def test_late_evening_visit_is_held_until_morning(client: FlaskClient, db: Engine) -> None:
    token = make_token(db)
    visit = dict(VISIT, visit_at="2026-06-02T19:00:00+03:00")
    assert post(client, token, visit).json["results"][0]["due_at"] == "2026-06-03T06:00:00+00:00"


def test_visit_too_old_is_stored_as_expired(client: FlaskClient, db: Engine) -> None:
    token = make_token(db)
    visit = dict(VISIT, visit_at="2026-05-20T10:00:00+03:00")
    result = post(client, token, visit).json["results"][0]
    assert (result["status"], result["skip_reason"]) == ("skipped", "expired")


def test_unknown_telegram_chat_is_no_channel(client: FlaskClient, db: Engine) -> None:
    token = make_token(db)
    visit = {"external_id": "T-1", "visit_at": VISIT["visit_at"], "telegram_chat_id": 123456}
    result = post(client, token, visit).json["results"][0]
    assert (result["status"], result["skip_reason"]) == ("skipped", "no_channel")


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer plt_wrong", "Basic dXNlcjpwYXNz", "Token abc"]
)
def test_requests_without_a_valid_token_are_refused(
    client: FlaskClient, db: Engine, header: str | None
) -> None:
    make_token(db)
    headers = {"Authorization": header} if header else {}
    response = client.post("/api/visits", json=VISIT, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert followup_rows(db) == []


def test_revoked_token_is_refused_and_tokens_are_stored_hashed(
    client: FlaskClient, db: Engine
) -> None:
    token = make_token(db)
    with db.connect() as conn:
        stored = conn.exec_driver_sql("SELECT token_hash FROM api_tokens").scalar_one()
    assert token not in stored and len(stored) == 64
    with transaction(db) as session:
        assert token_store.revoke_token(session, "Kaarina", "his", NOW)
    assert post(client, token, VISIT).status_code == 401


def test_tokens_keep_organisations_apart(client: FlaskClient, db: Engine) -> None:
    first = make_token(db, organisation="Kaarina", name="his")
    second = make_token(db, organisation="Turku", name="his")
    assert post(client, first, VISIT).json["results"][0]["status"] == "scheduled"
    assert post(client, second, VISIT).json["results"][0]["status"] == "scheduled"
    assert len(followup_rows(db)) == 2


def test_body_that_is_not_json_is_400(client: FlaskClient, db: Engine) -> None:
    token = make_token(db)
    response = client.post(
        "/api/visits", data="id;phone", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400
    assert "JSON" in response.json["error"]


def test_too_large_batch_is_413(client: FlaskClient, db: Engine) -> None:
    token = make_token(db)
    batch = [dict(VISIT, external_id=f"B-{i}") for i in range(1001)]
    assert post(client, token, batch).status_code == 413
    assert followup_rows(db) == []


def test_a_token_posts_only_under_its_own_source(client: FlaskClient, db: Engine) -> None:
    his = make_token(db, name="his", source="apotti")
    booking = make_token(db, name="booking")  # source: its name
    # No source in the body: the token's. Its own source named: accepted.
    assert post(client, his, VISIT).status_code == 200
    same = post(client, his, {"visits": [dict(VISIT, external_id="A-2")], "source": "apotti"})
    assert same.status_code == 200, same.json
    assert post(client, his, dict(VISIT, external_id="A-3", source="apotti")).status_code == 200
    # Another system's source, in the body or in one row: refused whole, nothing stored.
    forged = post(client, booking, {"visits": [dict(VISIT, external_id="B-1")], "source": "apotti"})
    assert forged.status_code == 403
    assert forged.json["error"].startswith("the body names source 'apotti', but this token")
    assert "posts visits for source 'booking' only" in forged.json["error"]
    rows = [dict(VISIT, external_id="B-2"), dict(VISIT, external_id="A-4", source=" apotti ")]
    one_row = post(client, booking, rows)
    assert one_row.status_code == 403
    assert one_row.json["error"].startswith("visit 1 names source 'apotti'")
    stored = {(r["external_id"], r["source"]) for r in followup_rows(db)}
    assert stored == {("A-1001", "apotti"), ("A-2", "apotti"), ("A-3", "apotti")}
    # The booking system could not block the patient system's next visit as a duplicate.
    nxt = post(client, his, dict(VISIT, external_id="A-4"))
    assert nxt.json["results"][0]["status"] == "scheduled"


def test_token_from_the_command_line_works_once_shown(
    client: FlaskClient, db: Engine, db_url: str
) -> None:
    from click.testing import CliRunner

    from palaute.cli import main

    env = {"DATABASE_URL": db_url, "ORGANISATION_NAME": "Kaarina"}
    created = CliRunner(env=env).invoke(main, ["api-token", "create", "apotti"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("plt_") and "not shown again" in created.stderr
    assert post(client, token, VISIT).status_code == 200

    again = CliRunner(env=env).invoke(main, ["api-token", "create", "apotti"])
    assert again.exit_code == 1 and "already exists" in again.output
    listed = CliRunner(env=env).invoke(main, ["api-token", "list"])
    assert "Kaarina\tapotti\tapotti\t" in listed.stdout and token not in listed.stdout
    revoked = CliRunner(env=env).invoke(main, ["api-token", "revoke", "apotti"])
    assert revoked.exit_code == 0
    assert post(client, token, VISIT).status_code == 401


REPO_FLOWS = Path(__file__).resolve().parents[2] / "flows"


@pytest.fixture
def shipped_client(db_url: str) -> Iterator[FlaskClient]:
    """The shipped flows: only health-centre-fft has `followup:`; library-visit has none."""
    made = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "FLOWS_DIR": REPO_FLOWS,
            "ADDRESS_KEY_SECRET": SECRET,
            "CLOCK": lambda: NOW,
        }
    )
    yield made.test_client()
    made.extensions["palaute"].close()


def test_point_of_a_flow_without_followup_is_a_row_error(
    shipped_client: FlaskClient, db: Engine
) -> None:
    token = make_token(db)
    batch = [
        dict(VISIT, external_id="L-1", service_point="kaarina-main-library"),
        dict(VISIT, external_id="H-1", service_point="kaarina-health-centre"),
        dict(VISIT, external_id="L-2", service_point="piikkio-library", flow="health-centre-fft"),
    ]
    response = post(shipped_client, token, batch)
    assert response.status_code == 207, response.json
    library, health, named = response.json["results"]
    assert library["status"] == "error"
    [error] = library["errors"]
    assert error["field"] == "service_point"
    message = error["message"]
    assert "'kaarina-main-library'" in message and "library-visit" in message
    assert "add `followup:` to library-visit" in message and "`flow`" in message
    assert (health["status"], named["status"]) == ("scheduled", "scheduled")
    # Nobody is sent the health-centre survey for a library visit by accident.
    assert [r["external_id"] for r in followup_rows(db)] == ["H-1", "L-2"]


def test_a_token_made_with_source_stores_its_visits_under_it(
    client: FlaskClient, db: Engine, db_url: str
) -> None:
    from click.testing import CliRunner

    from palaute.cli import main

    env = {"DATABASE_URL": db_url, "ORGANISATION_NAME": "Kaarina"}
    created = CliRunner(env=env).invoke(
        main, ["api-token", "create", "apotti-prod", "--source", "apotti"]
    )
    assert created.exit_code == 0, created.output
    assert "stored under source 'apotti'" in created.stderr
    token = created.stdout.strip()
    assert post(client, token, VISIT).status_code == 200
    assert [r["source"] for r in followup_rows(db)] == ["apotti"]
    refused = post(client, token, dict(VISIT, external_id="X-1", source="apotti-prod"))
    assert refused.status_code == 403
    listed = CliRunner(env=env).invoke(main, ["api-token", "list"])
    assert "Kaarina\tapotti-prod\tapotti\t" in listed.stdout
    blank = CliRunner(env=env).invoke(main, ["api-token", "create", "x", "--source", " "])
    assert blank.exit_code == 2 and "give a source name" in blank.output


HOSTILE_ROWS = [
    ("a folder, not a zone", {"timezone": "Europe"}, "timezone", "unknown time zone 'Europe'"),
    ("an overlong zone", {"timezone": "x" * 5000}, "timezone", "unknown time zone"),
    ("a zone outside the database", {"timezone": "../../etc/passwd"}, "timezone", "unknown"),
    (
        "a follow-up after the year 9999",
        {"visit_at": "9999-12-31T23:59:59+14:00"},
        "visit_at",
        "too far in the future",
    ),
    (
        "an instant before the year 1",
        {"visit_at": "0001-01-01T00:00:00+14:00"},
        "visit_at",
        "out of range",
    ),
]


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [row[1:] for row in HOSTILE_ROWS],
    ids=[row[0] for row in HOSTILE_ROWS],
)
def test_hostile_row_is_a_row_error_and_the_rest_is_kept(
    client: FlaskClient, db: Engine, extra: dict[str, str], field: str, message: str
) -> None:
    token = make_token(db)
    response = post(client, token, [{**VISIT, **extra}, {**VISIT, "external_id": "A-1002"}])
    assert response.status_code == 207, response.get_data(as_text=True)
    bad, good = response.json["results"]
    assert bad["status"] == "error"
    [error] = bad["errors"]
    assert error["field"] == field and message in error["message"]
    assert good["status"] == "scheduled"
    assert [row["external_id"] for row in followup_rows(db)] == ["A-1002"]


def test_hostile_rows_alone_get_422(client: FlaskClient, db: Engine) -> None:
    token = make_token(db)
    rows = [
        {**VISIT, "external_id": f"X-{i}", **extra}
        for i, (_, extra, _, _) in enumerate(HOSTILE_ROWS)
    ]
    response = post(client, token, rows)
    assert response.status_code == 422
    assert response.json["summary"] == {"error": len(HOSTILE_ROWS)}


def test_control_characters_are_cleaned_and_the_batch_is_stored(
    client: FlaskClient, db: Engine
) -> None:
    token = make_token(db)
    dirty = {
        **VISIT,
        "external_id": "A-\x00 1003",
        "service_point": "kallio\x1b",
        "source": "h\x00is",
    }
    response = post(client, token, {"visits": [dirty, {**VISIT, "external_id": "A-1004"}]})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [r["status"] for r in response.json["results"]] == ["scheduled", "scheduled"]
    stored = followup_rows(db)
    assert [(row["external_id"], row["source"]) for row in stored] == [
        ("A- 1003", "his"),
        ("A-1004", "his"),
    ]
