"""Is the database reachable, and is its schema the one the code needs?"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy import exc as sa_exc

from storage import migrate


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
    """One connection, two small queries: cheap enough for an uptime check every few seconds."""
    name = engine.dialect.name
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current: frozenset[str] = frozenset()
            if inspect(connection).has_table("alembic_version"):
                rows = connection.execute(text("SELECT version_num FROM alembic_version"))
                current = frozenset(str(row[0]) for row in rows)
    except sa_exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines() or [""]
        return DatabaseHealth(name, False, error=f"database unreachable: {reason[0]}")
    expected = expected_revisions()
    schema = ",".join(sorted(current)) or None
    if current != expected:
        needed = ",".join(sorted(expected))
        problem = "missing" if not current else f"at {schema}, the code needs {needed}"
        hint = f"database schema {problem}: run `palaute db upgrade`"
        return DatabaseHealth(name, True, schema, hint)
    return DatabaseHealth(name, True, schema)
