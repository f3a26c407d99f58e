"""Migration 0004 creates exactly the follow-up tables the models describe, and drops them;
0005 adds the partial indexes the two queues are claimed from; 0006 gives each API token
its source."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

import storage.followup_tables
from storage import api_tokens as token_store
from storage import migrate
from storage.db import make_engine, transaction
from storage.tables import UTCDateTime
from tests.storage.support import schema_diffs

FOLLOWUP_TABLES = {"visits", "followups", "api_tokens"}


def test_migration_matches_the_followup_models(db_url: str) -> None:
    diffs = schema_diffs(db_url, storage.followup_tables.METADATA)
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


QUEUE_INDEXES = {
    ("messages", "ix_messages_outbox_due"),
    ("followups", "ix_followups_claimable_due"),
}


def _queue_indexes(url: str) -> set[tuple[str, str]]:
    engine = make_engine(url)
    try:
        inspector = sa.inspect(engine)
        return {
            (table, index["name"])
            for table in ("messages", "followups")
            for index in inspector.get_indexes(table)
            if (table, index["name"]) in QUEUE_INDEXES
        }
    finally:
        engine.dispose()


def test_migration_0005_adds_and_removes_the_queue_indexes(db_url: str) -> None:
    assert _queue_indexes(db_url) == QUEUE_INDEXES
    migrate.downgrade(db_url, "0004_followups")
    assert _queue_indexes(db_url) == set()
    migrate.upgrade(db_url)
    assert _queue_indexes(db_url) == QUEUE_INDEXES


def test_migration_0006_gives_existing_tokens_their_name_as_source(db_url: str) -> None:
    migrate.downgrade(db_url, "0005_queue_indexes")
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            # As a token made before 0006: no source column yet.
            connection.execute(
                sa.text(
                    "INSERT INTO api_tokens (organisation, name, token_hash, created_at) "
                    "VALUES ('Kaarina', 'his', :hash, :at)"
                ).bindparams(sa.bindparam("at", type_=UTCDateTime)),
                {"hash": "ab" * 32, "at": datetime(2026, 5, 1, tzinfo=UTC)},
            )
        migrate.upgrade(db_url)
        with transaction(engine) as session:
            found = token_store.token_by_hash(session, "ab" * 32)
        assert found is not None and (found.name, found.source) == ("his", "his")
        columns = {c["name"]: c for c in sa.inspect(engine).get_columns("api_tokens")}
        assert columns["source"]["nullable"] is False
        migrate.downgrade(db_url, "0005_queue_indexes")
        assert "source" not in {c["name"] for c in sa.inspect(engine).get_columns("api_tokens")}
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT name FROM api_tokens")).scalar() == "his"
    finally:
        engine.dispose()
