"""Migrations create exactly the schema the table models describe, and can be undone."""

from __future__ import annotations

import sqlalchemy as sa
from click.testing import CliRunner

from palaute.cli import main
from storage import migrate
from storage.db import make_engine
from storage.tables import METADATA
from tests.storage.support import schema_diffs, table_of

CORE_TABLES = {"contacts", "opt_events", "flow_versions", "flow_runs", "answers", "messages"}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    assert migrate.current(empty_db_url) is None
    migrate.upgrade(empty_db_url)
    assert migrate.current(empty_db_url) == migrate.head()
    assert _tables(empty_db_url) >= CORE_TABLES

    migrate.downgrade(empty_db_url, "base")
    assert migrate.current(empty_db_url) is None
    assert not CORE_TABLES & _tables(empty_db_url)

    migrate.upgrade(empty_db_url)  # and back again, with nothing left over in between
    assert migrate.current(empty_db_url) == migrate.head()
    migrate.upgrade(empty_db_url)  # running it twice changes nothing
    assert migrate.current(empty_db_url) == migrate.head()


def test_core_revision_matches_the_table_models(db_url: str) -> None:
    diffs = schema_diffs(db_url, METADATA)
    core_diffs = [d for d in diffs if table_of(d, unknown="contacts") in CORE_TABLES]
    assert core_diffs == []


def test_one_active_run_per_contact_is_enforced_by_the_database(db_url: str) -> None:
    engine = make_engine(db_url)
    now = "2026-05-14 09:00:00"
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO contacts (id, channel, address, address_key, opted_out, "
                    "created_at, updated_at) VALUES (1, 'sms', 'x', 'k', false, :t, :t)"
                ),
                {"t": now},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO flow_versions (flow_id, version, source, first_seen_at) "
                    "VALUES ('f', 'v', '', :t)"
                ),
                {"t": now},
            )
        insert = sa.text(
            "INSERT INTO flow_runs (contact_id, flow_id, flow_version, status, language, "
            "state, started_at, updated_at, expires_at) "
            "VALUES (1, 'f', 'v', :status, 'fi', '{}', :t, :t, :t)"
        )
        with engine.begin() as connection:
            connection.execute(insert, {"status": "completed", "t": now})
            connection.execute(insert, {"status": "completed", "t": now})
            connection.execute(insert, {"status": "active", "t": now})
        try:
            with engine.begin() as connection:
                connection.execute(insert, {"status": "active", "t": now})
        except sa.exc.IntegrityError:
            pass
        else:
            raise AssertionError("a second active run for one contact was accepted")
    finally:
        engine.dispose()


def test_db_commands(empty_db_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["db", "current", "--url", empty_db_url])
    assert result.exit_code == 0, result.output
    assert "no tables yet" in result.output

    result = runner.invoke(main, ["db", "upgrade", "--url", empty_db_url])
    assert result.exit_code == 0, result.output
    assert "upgraded" in result.output
    result = runner.invoke(main, ["db", "upgrade", "--url", empty_db_url])
    assert "up to date" in result.output

    result = runner.invoke(main, ["db", "current", "--url", empty_db_url])
    assert result.exit_code == 0
    assert "(head)" in result.output

    result = runner.invoke(main, ["db", "downgrade", "--url", empty_db_url, "base", "--yes"])
    assert result.exit_code == 0, result.output
    assert migrate.current(empty_db_url) is None


def test_db_upgrade_reports_an_unreachable_database_clearly() -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    result = CliRunner().invoke(main, ["db", "upgrade", "--url", url])
    assert result.exit_code == 1
    assert "could not upgrade" in result.output
    assert "DATABASE_URL" in result.output
