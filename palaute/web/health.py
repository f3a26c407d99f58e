"""``/healthz``: is the app up, can it write to its database, is the schema current?

200 ``{"status": "ok", ...}`` when the schema is at the newest migration and the
database accepts a write (an UPDATE of ``alembic_version`` that changes nothing, rolled
back: a read-only SQLite file or a PostgreSQL standby fails it); 503 with a short reason
otherwise, so a load balancer or an uptime check can act on it. The reason never names
the database's host, port or file (anyone may call this): the detail goes to the log.
Cheap enough to call every few seconds: one connection, three small statements.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from alembic.script import ScriptDirectory
from flask import Blueprint, jsonify
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect, text

from palaute.web import services
from storage import migrate

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

# Takes the row lock (PostgreSQL) or the write lock (SQLite) for a moment; rolled back.
WRITE_CHECK = text("UPDATE alembic_version SET version_num = version_num")


@cache
def expected_revisions() -> frozenset[str]:
    """The newest migration(s) the code ships (read once per process)."""
    return frozenset(ScriptDirectory.from_config(migrate.alembic_config()).get_heads())


@bp.get("/healthz")
def healthz() -> tuple[Any, int]:
    container = services()
    body: dict[str, Any] = {"status": "ok", "database": container.db.dialect.name}
    current: frozenset[str] = frozenset()
    step = "unreachable"
    try:
        with container.db.connect() as connection:
            connection.execute(text("SELECT 1"))
            if inspect(connection).has_table("alembic_version"):
                rows = connection.execute(text("SELECT version_num FROM alembic_version"))
                current = frozenset(str(row[0]) for row in rows)
            connection.rollback()
            if current:
                step = "read-only (writes fail)"
                with connection.begin() as check:
                    connection.execute(WRITE_CHECK)
                    check.rollback()
    except sa_exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines() or [""]
        log.error("/healthz: database %s: %s", step, reason[0])
        body.update(status="error", error=f"database {step}")
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
