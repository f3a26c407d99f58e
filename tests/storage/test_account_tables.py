"""Migration 0008_staff creates exactly the staff tables the models describe."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage.db import make_engine
from storage.tables import METADATA

STAFF_TABLES = {"staff_users", "staff_user_points"}


def _table(diff: Any) -> str:
    item = diff[0] if isinstance(diff, list) else diff
    kind = item[0]
    if kind in ("add_table", "remove_table"):
        return str(item[1].name)
    if kind in ("add_column", "remove_column") or kind.startswith("modify_"):
        return str(item[2])
    table = getattr(item[1], "table", None)
    return str(table.name) if table is not None else "staff_users"  # unknown: count it


def test_staff_tables_match_their_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diffs = compare_metadata(context, METADATA)
    finally:
        engine.dispose()
    assert [d for d in diffs if _table(d) in STAFF_TABLES] == []
