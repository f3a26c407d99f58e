"""docs/visits.md and GET /api/openapi.json say what POST /api/visits and the CSV import
really accept and answer: the OpenAPI document is valid 3.1, every real response of the
requests below (the docs' own examples among them) matches the schema it declares, and
the documented CSV example imports as described."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from sqlalchemy import Engine

from palaute.app import create_app
from palaute.cli import main
from service.visits import FIELDS
from service.visits_csv import read_export
from storage.db import make_engine
from tests.service.followup_support import SECRET, make_token, write_flows

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "visits.md").read_text(encoding="utf-8")
NOW = datetime(2026, 6, 2, 5, 0, tzinfo=UTC)  # 08:00 in Helsinki, the day of the examples


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, re.DOTALL)


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    made = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "FLOWS_DIR": write_flows(tmp_path / "flows"),
            "ADDRESS_KEY_SECRET": SECRET,
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


def schema_validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for one schema of the document, its #/components refs resolvable."""
    return Draft202012Validator({**schema, "components": document["components"]})


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_the_openapi_document_is_valid_openapi_3_1(app: Flask) -> None:
    response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.json
    assert document["openapi"].startswith("3.1")
    validate_openapi(document)  # raises on any violation of the OpenAPI 3.1 schema
    visit = document["components"]["schemas"]["Visit"]
    assert set(visit["properties"]) == {*FIELDS, "source"}  # every field the API reads


def requests_to_send() -> list[tuple[str, Any, bool]]:
    """(name, body, with a token): the docs' JSON request examples and hostile ones."""
    doc_requests = [json.loads(b) for b in blocks("json") if '"results"' not in b]
    assert len(doc_requests) == 2
    return [
        ("docs: one visit", doc_requests[0], True),
        ("docs: a batch with a bad row", doc_requests[1], True),
        ("the same visit again", doc_requests[0], True),
        ("no visit is valid", [{"external_id": "X"}, {"visit_at": "2026-06-02T10:00Z"}], True),
        ("no channel", {"external_id": "B-1", "visit_at": "2026-06-02T10:00:00Z"}, True),
        ("not visits", "just a string", True),
        ("empty list", [], True),
        ("too many", [{"external_id": str(n)} for n in range(1001)], True),
        ("no token", doc_requests[0], False),
        ("another system's source", {**doc_requests[0], "source": "other-system"}, True),
    ]


def test_every_response_matches_the_documented_schema(app: Flask, db: Engine, db_url: str) -> None:
    client: FlaskClient = app.test_client()
    document = client.get("/api/openapi.json").json
    operation = document["paths"]["/api/visits"]["post"]
    request_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    token = make_token(db)
    seen: dict[str, int] = {}
    for name, body, with_token in requests_to_send():
        headers = {"Authorization": f"Bearer {token}"} if with_token else {}
        response = client.post("/api/visits", json=body, headers=headers)
        status = str(response.status_code)
        seen[name] = response.status_code
        assert status in operation["responses"], f"{name}: undocumented status {status}"
        declared = operation["responses"][status]
        schema = declared["content"]["application/json"]["schema"]
        errors = list(schema_validator(document, schema).iter_errors(response.json))
        assert errors == [], f"{name}: {response.json} does not match: {errors[0].message}"
        for header in declared.get("headers", {}):
            assert header in response.headers, f"{name}: {header} missing"
        if response.status_code in (200, 207):  # accepted: the body was a valid request
            assert not list(schema_validator(document, request_schema).iter_errors(body)), name
    assert seen == {
        "docs: one visit": 200,
        "docs: a batch with a bad row": 207,
        "the same visit again": 200,
        "no visit is valid": 422,
        "no channel": 200,
        "not visits": 422,
        "empty list": 400,
        "too many": 413,
        "no token": 401,
        "another system's source": 403,
    }


def test_the_documented_response_example_matches_the_schema_and_the_api(
    app: Flask, db: Engine
) -> None:
    client = app.test_client()
    document = client.get("/api/openapi.json").json
    [example] = [json.loads(b) for b in blocks("json") if '"results"' in b]
    results = document["components"]["schemas"]["Results"]
    assert not list(schema_validator(document, results).iter_errors(example))
    token = make_token(db)
    batch = [json.loads(b) for b in blocks("json") if '"results"' not in b][1]
    real = client.post("/api/visits", json=batch, headers={"Authorization": f"Bearer {token}"})
    assert real.json == example  # the docs show what the API answers


def test_the_docs_list_every_field_and_the_csv_headers_they_name_are_recognised() -> None:
    table = DOC[DOC.index("## The fields") : DOC.index("## CSV import")]
    assert [f for f in FIELDS if f"`{f}`" not in table] == []
    headers = DOC[DOC.index("| Field | Headers recognised") : DOC.index("Any other header")]
    for line in [x for x in headers.splitlines()[2:] if x.startswith("|")]:
        cell, names = line.strip("|").split("|")
        field = cell.strip().strip("`")
        required = {} if field == "external_id" else {"external_id": "req id"}
        if field not in ("visit_at", "visit_date"):
            required["visit_at"] = "req at"
        for name in re.findall(r"`([^`]+)`", names):
            header = ";".join([name, *required.values()])
            export = read_export(f"{header}\n".encode(), columns=required)
            assert export.mapping.get(field) == name, (field, name, export.mapping)


def test_the_documented_csv_example_imports_as_described(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("palaute.commands.visits.utcnow", lambda: NOW)
    [example] = blocks("csv")
    path = tmp_path / "visits.csv"
    path.write_bytes(example.encode("cp1252"))  # as Excel saves it on Finnish Windows
    env = {
        "DATABASE_URL": db_url,
        "FLOWS_DIR": str(write_flows(tmp_path / "flows")),
        "ADDRESS_KEY_SECRET": SECRET,
        "ORGANISATION_TIMEZONE": "Europe/Helsinki",
    }
    result = CliRunner(env=env).invoke(main, ["visits", "import", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "2 scheduled, 1 skipped, 0 already imported, 0 rejected." in result.stdout
    assert "no_channel 1" in result.stdout
