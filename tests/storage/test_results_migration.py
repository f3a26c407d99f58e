"""Migration 0007: conversations stored before it are marked as test data by channel,
and runs and answers get their contact's channel."""

from __future__ import annotations

import sqlalchemy as sa

from storage import migrate
from storage.db import make_engine

T = "2026-05-14 09:00:00"


def test_0007_backfills_test_flags_and_channels(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url, "0006_api_token_source")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO flow_versions (flow_id, version, source, first_seen_at) "
                    "VALUES ('f', 'v', '', :t)"
                ),
                {"t": T},
            )
            for contact_id, channel in ((1, "sms"), (2, "simulator"), (3, "telegram")):
                connection.execute(
                    sa.text(
                        "INSERT INTO contacts (id, channel, address, address_key, opted_out, "
                        "created_at, updated_at) VALUES (:id, :ch, 'a', :key, false, :t, :t)"
                    ),
                    {"id": contact_id, "ch": channel, "key": f"k{contact_id}", "t": T},
                )
                connection.execute(
                    sa.text(
                        "INSERT INTO flow_runs (id, contact_id, flow_id, flow_version, status, "
                        "language, state, started_at, updated_at, expires_at) VALUES "
                        "(:id, :id, 'f', 'v', 'completed', 'fi', '{}', :t, :t, :t)"
                    ),
                    {"id": contact_id, "t": T},
                )
                connection.execute(
                    sa.text(
                        "INSERT INTO answers (run_id, contact_id, flow_id, flow_version, "
                        "step_id, value_int, raw_text, language, answered_at, skipped, "
                        "truncated) VALUES (:id, :id, 'f', 'v', 'q', 5, '5', 'fi', :t, "
                        "false, false)"
                    ),
                    {"id": contact_id, "t": T},
                )
        engine.dispose()
        migrate.upgrade(empty_db_url)
        with engine.connect() as connection:

            def flags(query: str) -> list[tuple[object, ...]]:
                return [tuple(row) for row in connection.execute(sa.text(query))]

            assert flags("SELECT id, is_test FROM contacts ORDER BY id") == [
                (1, False),
                (2, True),
                (3, False),
            ]
            expected = [(1, "sms", False), (2, "simulator", True), (3, "telegram", False)]
            assert flags("SELECT id, channel, is_test FROM flow_runs ORDER BY id") == expected
            assert flags("SELECT run_id, channel, is_test FROM answers ORDER BY run_id") == expected
        engine.dispose()
        migrate.downgrade(empty_db_url, "0006_api_token_source")
        with engine.connect() as connection:
            columns = {c["name"] for c in sa.inspect(connection).get_columns("answers")}
            assert "is_test" not in columns and "channel" not in columns
    finally:
        engine.dispose()
