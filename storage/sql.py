"""Small dialect-aware statement helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session


def execute(session: Session, statement: Any, params: dict[str, Any] | None = None) -> Any:
    """Run a Core statement on the session's connection (skips the ORM's per-call work).

    Same transaction as ``session.execute``; used on the per-message path.
    """
    return session.connection().execute(statement, params)


def dialect_name(session: Session) -> str:
    bind = session.get_bind()
    return bind.dialect.name


def insert_ignore(
    session: Session,
    table: sa.Table,
    values: dict[str, Any],
    conflict_columns: Sequence[str],
) -> int:
    """INSERT ... ON CONFLICT (cols) DO NOTHING; returns the number of rows inserted."""
    insert: Any
    if dialect_name(session) == "postgresql":
        insert = postgresql.insert(table)
    else:
        insert = sqlite.insert(table)
    statement = insert.values(**values).on_conflict_do_nothing(index_elements=conflict_columns)
    result = session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)
