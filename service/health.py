"""Is the database reachable and writable, and is its schema the one the code needs?

The schema must be at the newest migration and the database must accept a write (an
UPDATE of ``alembic_version`` that changes nothing, rolled back: a read-only SQLite file
or a PostgreSQL standby fails it). The error text never names the database's host, port
or file (anyone may call ``/healthz``): the detail goes to the log. One connection, three
small statements.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy import exc as sa_exc

from storage import migrate

log = logging.getLogger(__name__)

# Takes the row lock (PostgreSQL) or the write lock (SQLite) for a moment; rolled back.
WRITE_CHECK = text("UPDATE alembic_version SET version_num = version_num")


@dataclass(frozen=True)
class DatabaseHealth:
    database: str  # the dialect: sqlite, postgresql
    reachable: bool
    schema: str | None = None  # the revision(s) the database is at
    error: str | None = None  # what is wrong, with what to do; None when healthy


@cache
def expected_revisions() -> frozenset[str]:
    """The newest migration(s) the code ships (read once per process)."""
    return frozenset(ScriptDirectory.from_config(migrate.alembic_config()).get_heads())


def check_database(engine: Engine) -> DatabaseHealth:
    name = engine.dialect.name
    current: frozenset[str] = frozenset()
    step = "unreachable"
    try:
        with engine.connect() as connection:
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
        return DatabaseHealth(name, False, error=f"database {step}")
    expected = expected_revisions()
    schema = ",".join(sorted(current)) or None
    if current != expected:
        needed = ",".join(sorted(expected))
        problem = "missing" if not current else f"at {schema}, the code needs {needed}"
        hint = f"database schema {problem}: run `palaute db upgrade`"
        return DatabaseHealth(name, True, schema, hint)
    return DatabaseHealth(name, True, schema)
