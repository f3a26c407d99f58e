"""``/healthz``: is the app up, can it reach its database, is the schema current?

200 ``{"status": "ok", ...}`` when a trivial query succeeds and the schema is at the
newest migration; 503 with the reason otherwise, so a load balancer or an uptime check
can act on it. Cheap enough to call every few seconds: one connection, two small queries.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from palaute.web import services
from service.health import check_database

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Any, int]:
    container = services()
    health = check_database(container.db)
    body: dict[str, Any] = {"status": "ok", "database": health.database}
    if health.reachable:
        body["schema"] = health.schema
    if health.error is not None:
        body.update(status="error", error=health.error)
        return jsonify(body), 503
    body["flows"] = len(container.catalogue.all())
    return jsonify(body), 200
