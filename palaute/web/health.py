"""``/healthz``: is the app up, can it reach its database, is the schema current?

200 ``{"status": "ok", ...}`` when a trivial query succeeds and the schema is at the
newest migration; 503 with the reason otherwise, so a load balancer or an uptime check
can act on it. Cheap enough to call every few seconds: one connection, two small queries.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from alembic.script import ScriptDirectory
from flask import Blueprint, jsonify
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect, text

from palaute.web import services
from storage import migrate

bp = Blueprint("health", __name__)


@cache
def expected_revisions() -> frozenset[str]:
    """The newest migration(s) the code ships (read once per process)."""
    return frozenset(ScriptDirectory.from_config(migrate.alembic_config()).get_heads())


@bp.get("/healthz")
def healthz() -> tuple[Any, int]:
    container = services()
    body: dict[str, Any] = {"status": "ok", "database": container.db.dialect.name}
    try:
        with container.db.connect() as connection:
            connection.execute(text("SELECT 1"))
            current: frozenset[str] = frozenset()
            if inspect(connection).has_table("alembic_version"):
                rows = connection.execute(text("SELECT version_num FROM alembic_version"))
                current = frozenset(str(row[0]) for row in rows)
    except sa_exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines() or [""]
        body.update(status="error", error=f"database unreachable: {reason[0]}")
        return jsonify(body), 503
    expected = expected_revisions()
    body["schema"] = ",".join(sorted(current)) or None
    if current != expected:
        problem = (
            "missing"
            if not current
            else f"at {body['schema']}, the code needs {','.join(sorted(expected))}"
        )
        body.update(status="error", error=f"database schema {problem}: run `palaute db upgrade`")
        return jsonify(body), 503
    body["flows"] = len(container.catalogue.all())
    return jsonify(body), 200
