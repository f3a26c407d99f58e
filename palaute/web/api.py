"""``POST /api/visits``: patient and booking systems report visits for follow-up surveys.

    Authorization: Bearer plt_...            (``palaute api-token create NAME``)
    Content-Type: application/json

    {"external_id": "A-1001", "visit_at": "2026-06-02T10:15:00+03:00",
     "phone": "040 123 4567", "service_point": "kallio", "language": "fi"}

A single visit, a list of visits, or ``{"visits": [...], "source": "..."}``. The visits are
stored under the token's source (``palaute api-token create NAME --source S``, default
NAME): a body or row naming another source is refused whole with 403, so one system
cannot file visits (and block duplicates) in another's name. Each row gets
a result in the same order: ``scheduled`` (with ``due_at``), ``skipped`` (stored, but no
survey will be sent: ``skip_reason``), ``duplicate`` (this source already sent this id;
nothing changed) or ``error`` (not stored: ``errors`` lists field and message).

Status: 200 when every row was accepted, 207 when some rows have errors (the others are
kept), 422 when none was accepted, 400 for a body that is not JSON visits, 401 without a
valid token, 403 for another source than the token's, 413 for more than ``MAX_BATCH``
rows, 503 (with Retry-After) when the database is busy — nothing was stored then, send
the same request again.

``GET /api/openapi.json`` describes it (OpenAPI 3.1, ``palaute.web.openapi``); the columns
and body are documented with examples in docs/visits.md.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request

from bot.clean import clean_text
from palaute.web import now, openapi, services
from palaute.web.json_body import read_json
from service.api_tokens import authenticate
from service.errors import SchemaNotReadyError, StorageError
from service.visits import Intake, RowError, apply_stored, row_result, store_visits, summarise

bp = Blueprint("api", __name__, url_prefix="/api")
log = logging.getLogger(__name__)

MAX_BATCH = openapi.MAX_BATCH


@bp.get("/openapi.json")
def openapi_document() -> Any:
    """The OpenAPI 3.1 description of this API (public: it holds no data)."""
    return jsonify(openapi.document())


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

    if not request.is_json:
        return _problem(400, 'the body must be JSON: one visit, a list, or {"visits": [...]}')
    body = read_json()
    if body is None:
        return _problem(400, 'the body must be JSON: one visit, a list, or {"visits": [...]}')
    named: list[tuple[str, Any]] = []  # (where, the source it names)
    if isinstance(body, dict) and "visits" in body:
        named.append(("the body", body.get("source")))
        body = body["visits"]
    rows = body if isinstance(body, list) else [body]
    if not rows:
        return _problem(400, "no visits in the body")
    if len(rows) > MAX_BATCH:
        return _problem(413, f"at most {MAX_BATCH} visits per request; split the batch")
    named += [(f"visit {i}", r.get("source")) for i, r in enumerate(rows) if isinstance(r, dict)]
    foreign = [(where, other) for where, other in named if _other_source(other, found.source)]
    if foreign:
        where, other = foreign[0]
        return _problem(
            403,
            f"{where} names source {str(other).strip()!r}, but this token ({found.name!r}) "
            f"posts visits for source {found.source!r} only: leave `source` out, or send "
            f"with the token made for {str(other).strip()!r}. Nothing was stored.",
        )
    source = found.source

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


def _other_source(named: Any, own: str) -> bool:
    """Whether a ``source`` value in the body names another source than the token's."""
    if named is None or isinstance(named, dict | list):
        return named not in (None, {}, [])
    # Compared as it would be stored: control characters cleaned (bot.clean).
    return clean_text(str(named)).strip() not in ("", own)


def _unavailable(error: StorageError) -> Any:
    # The detail may name the database server; it goes to the log, not to the caller.
    log.error("/api/visits: storage error, nothing stored: %s", error)
    if error.retryable:
        return _problem(503, "busy, nothing was stored; try again", **{"Retry-After": "5"})
    if isinstance(error, SchemaNotReadyError):  # names only a table: says what to run
        return _problem(500, f"storage error, nothing was stored: {error}")
    return _problem(500, "storage error, nothing was stored; the operators have the detail")
