"""``POST /api/visits``: patient and booking systems report visits for follow-up surveys.

    Authorization: Bearer plt_...            (``palaute api-token create NAME``)
    Content-Type: application/json

    {"external_id": "A-1001", "visit_at": "2026-06-02T10:15:00+03:00",
     "phone": "040 123 4567", "service_point": "kallio", "language": "fi"}

A single visit, a list of visits, or ``{"visits": [...], "source": "..."}``. Each row gets
a result in the same order: ``scheduled`` (with ``due_at``), ``skipped`` (stored, but no
survey will be sent: ``skip_reason``), ``duplicate`` (this source already sent this id;
nothing changed) or ``error`` (not stored: ``errors`` lists field and message).

Status: 200 when every row was accepted, 207 when some rows have errors (the others are
kept), 422 when none was accepted, 400 for a body that is not JSON visits, 401 without a
valid token, 413 for more than ``MAX_BATCH`` rows, 503 (with Retry-After) when the database
is busy — nothing was stored then, send the same request again.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from palaute.web import now, services
from service.api_tokens import authenticate
from service.errors import StorageError
from service.visits import Intake, RowError, apply_stored, row_result, store_visits, summarise

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_BATCH = 1000


def _problem(status: int, message: str, **headers: str) -> tuple[Response, int, dict[str, str]]:
    return jsonify({"error": message}), status, headers


@bp.post("/visits")
def post_visits() -> Any:
    container = services()
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _problem(
            401,
            "send your API token: Authorization: Bearer <token>",
            **{"WWW-Authenticate": 'Bearer realm="palaute"'},
        )
    try:
        found = authenticate(container.db, token)
    except StorageError as error:
        return _unavailable(error)
    if found is None:
        return _problem(
            401,
            "unknown or revoked API token",
            **{"WWW-Authenticate": 'Bearer realm="palaute", error="invalid_token"'},
        )

    body = request.get_json(silent=True)
    if body is None:
        return _problem(400, 'the body must be JSON: one visit, a list, or {"visits": [...]}')
    source = found.name
    if isinstance(body, dict) and "visits" in body:
        if isinstance(body.get("source"), str) and body["source"].strip():
            source = body["source"].strip()
        body = body["visits"]
    rows = body if isinstance(body, list) else [body]
    if not rows:
        return _problem(400, "no visits in the body")
    if len(rows) > MAX_BATCH:
        return _problem(413, f"at most {MAX_BATCH} visits per request; split the batch")

    settings = container.settings
    intake = Intake(
        flows=container.catalogue,
        organisation=found.organisation,
        organisation_zone=settings.organisation_timezone,
        default_region=settings.phone_default_region,
        default_flow=settings.followup_default_flow or None,
    )
    moment = now()
    results: list[dict[str, Any]] = []
    valid = []
    positions = []
    for index, raw in enumerate(rows):
        if not isinstance(raw, dict):
            results.append(row_result(index, [RowError("", "each visit must be a JSON object")]))
            continue
        outcome = intake.validate(raw, source=source, now=moment)
        results.append(row_result(index, outcome))
        if not isinstance(outcome, list):
            valid.append(outcome)
            positions.append(index)
    if valid:
        try:
            stored = store_visits(container.db, container.conversations.contacts, valid, moment)
        except StorageError as error:
            return _unavailable(error)
        for position, saved in zip(positions, stored, strict=True):
            results[position] = apply_stored(results[position], saved)

    accepted = sum(1 for r in results if r["status"] != "error")
    status = 200 if accepted == len(results) else (207 if accepted else 422)
    return jsonify({"results": results, "summary": summarise(results)}), status


def _unavailable(error: StorageError) -> Any:
    if error.retryable:
        return _problem(
            503, f"busy, nothing was stored; try again: {error}", **{"Retry-After": "5"}
        )
    return _problem(500, f"storage error, nothing was stored: {error}")
