"""Migration 0004 creates exactly the follow-up tables the models describe, and drops them."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import storage.followup_tables
from storage import migrate
from storage.db import make_engine

FOLLOWUP_TABLES = {"visits", "followups", "api_tokens"}


def test_migration_matches_the_followup_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diffs = compare_metadata(context, storage.followup_tables.METADATA)
    finally:
        engine.dispose()
    mine = [d for d in diffs if FOLLOWUP_TABLES & set(str(d).replace("'", " ").split())]
    assert mine == []


def test_downgrade_drops_the_followup_tables(db_url: str) -> None:
    migrate.downgrade(db_url, "0001_core")
    engine = make_engine(db_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert not FOLLOWUP_TABLES & tables
    assert "contacts" in tables
