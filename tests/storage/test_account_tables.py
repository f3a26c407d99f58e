"""Migration 0008_staff creates exactly the staff tables the models describe."""

from __future__ import annotations

from storage.tables import METADATA
from tests.storage.support import schema_diffs, table_of

STAFF_TABLES = {"staff_users", "staff_user_points"}


def test_staff_tables_match_their_models(db_url: str) -> None:
    diffs = schema_diffs(db_url, METADATA)
    assert [d for d in diffs if table_of(d, unknown="staff_users") in STAFF_TABLES] == []
