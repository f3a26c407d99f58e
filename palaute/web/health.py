"""``/healthz``: is the app up, can it write to its database, is the schema current?

200 ``{"status": "ok", ...}`` when the schema is at the newest migration and the
database accepts a write (an UPDATE of ``alembic_version`` that changes nothing, rolled
back: a read-only SQLite file or a PostgreSQL standby fails it); 503 with a short reason
otherwise, so a load balancer or an uptime check can act on it. The reason never names
the database's host, port or file (anyone may call this): the detail goes to the log.
Cheap enough to call every few seconds: one connection, three small statements.
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
