"""Engines, transactions and typed errors."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import sqlite3
import threading
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from storage.db import is_sqlite, make_engine, read_only, transaction
from storage.errors import RetryableStorageError, SchemaNotReadyError, StorageError
from storage.tables import ContactRow
from tests.storage.support import NOW

contacts_table = ContactRow.__table__  # type: ignore[attr-defined]


def test_sqlite_is_set_up_for_concurrent_writers(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'db.sqlite3'}")  # folder is made
    try:
        with engine.connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            }
        assert pragma == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 30000}
    finally:
        engine.dispose()


def _can_write_now(database: Path) -> bool:
    other = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    except sqlite3.OperationalError as error:
        assert "locked" in str(error)
        return False
    finally:
        other.close()
    return True


def test_sqlite_transactions_begin_immediate(tmp_path: Path) -> None:
    """A transaction takes the write lock when it begins, before its first write (so it
    never fails halfway with "database is locked"); read-only ones do not take it."""
    database = tmp_path / "db.sqlite3"
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("SELECT 1")
            assert not _can_write_now(database)
        with read_only(engine).begin() as connection:
            connection.exec_driver_sql("SELECT 2")
            assert _can_write_now(database)
        assert _can_write_now(database)
    finally:
        engine.dispose()


def test_sqlite_begin_that_times_out_is_a_retryable_storage_error(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite3"
    engine = make_engine(f"sqlite:///{database}", connect_args={"timeout": 0.05})
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        with engine.begin() as connection:  # creates the file in WAL mode
            connection.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(RetryableStorageError), transaction(engine) as session:
            session.execute(sa.text("INSERT INTO t VALUES (1)"))
    finally:
        holder.close()
        engine.dispose()


def test_read_modify_write_from_many_threads_loses_no_update(engine: Engine) -> None:
    """Writers queue for the lock (SQLite) or the row lock (PostgreSQL) instead of failing."""
    with transaction(engine) as session:
        session.execute(
            sa.insert(contacts_table).values(
                id=1,
                channel="sms",
                address="x",
                address_key="k",
                opted_out=False,
                language="0",
                created_at=NOW,
                updated_at=NOW,
            )
        )
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(10):
                with transaction(engine) as session:
                    value = session.execute(
                        sa.select(contacts_table.c.language)
                        .where(contacts_table.c.id == 1)
                        .with_for_update()
                    ).scalar_one()
                    session.execute(
                        sa.update(contacts_table)
                        .where(contacts_table.c.id == 1)
                        .values(language=str(int(value) + 1))
                    )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=bump) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with engine.connect() as connection:
        total = connection.execute(sa.select(contacts_table.c.language)).scalar_one()
    assert total == "50"


def _gate_is_free(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_sqlite_writers_queue_at_the_gate_for_the_whole_transaction(tmp_path: Path) -> None:
    """A writer holds ``<db>-writer.lock`` from before BEGIN until after COMMIT, so the
    next writer (another gunicorn worker) wakes as soon as the commit is done instead of
    polling SQLite's lock; readers never queue."""
    database = tmp_path / "db.sqlite3"
    engine = make_engine(f"sqlite:///{database}")
    gate = tmp_path / "db.sqlite3-writer.lock"
    try:
        with transaction(engine) as session:
            session.execute(sa.text("CREATE TABLE t (n INTEGER)"))
            assert not _gate_is_free(gate)
        assert _gate_is_free(gate)
        with transaction(read_only(engine)) as session:
            session.execute(sa.text("SELECT count(*) FROM t"))
            assert _gate_is_free(gate)
        with pytest.raises(RuntimeError), transaction(engine) as session:
            session.execute(sa.text("INSERT INTO t VALUES (1)"))
            raise RuntimeError("rolled back")
        assert _gate_is_free(gate)  # released after a rollback too
    finally:
        engine.dispose()


def _count_up(url: str, times: int) -> None:
    engine = make_engine(url)
    try:
        for _ in range(times):
            with transaction(engine) as session:
                value = session.execute(sa.text("SELECT n FROM counter")).scalar_one()
                session.execute(sa.text("UPDATE counter SET n = :n"), {"n": value + 1})
    finally:
        engine.dispose()


def test_sqlite_writers_in_several_processes_lose_no_update(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    engine = make_engine(url)
    try:
        with transaction(engine) as session:
            session.execute(sa.text("CREATE TABLE counter (n INTEGER)"))
            session.execute(sa.text("INSERT INTO counter VALUES (0)"))
        context = multiprocessing.get_context("spawn")
        workers = [context.Process(target=_count_up, args=(url, 40)) for _ in range(3)]
        for worker in workers:
            worker.start()
        _count_up(url, 40)
        for worker in workers:
            worker.join(timeout=120)
        assert [worker.exitcode for worker in workers] == [0, 0, 0]
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT n FROM counter").scalar_one() == 160
    finally:
        engine.dispose()


def test_naive_datetimes_never_reach_the_database(engine: Engine) -> None:
    with pytest.raises(ValueError, match="naive datetime"), transaction(engine) as session:
        session.execute(
            sa.insert(contacts_table).values(
                channel="sms",
                address="x",
                address_key="k",
                created_at=datetime(2026, 1, 1),
                updated_at=datetime(2026, 1, 1),
            )
        )


def test_times_come_back_as_aware_utc(engine: Engine) -> None:
    from datetime import timedelta, timezone

    helsinki_summer = timezone(timedelta(hours=3))
    local = datetime(2026, 6, 1, 12, 0, tzinfo=helsinki_summer)
    with transaction(engine) as session:
        session.execute(
            sa.insert(contacts_table).values(
                channel="sms", address="x", address_key="k", created_at=local, updated_at=local
            )
        )
    with transaction(engine) as session:
        stored = session.execute(sa.select(contacts_table.c.created_at)).scalar_one()
    assert stored == local
    assert stored.utcoffset() == timedelta(0)


def test_a_missing_schema_says_to_run_the_migrations(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    try:
        with (
            pytest.raises(SchemaNotReadyError, match="palaute db upgrade") as caught,
            transaction(engine) as session,
        ):
            session.execute(sa.select(contacts_table.c.id))
        assert caught.value.retryable is False
    finally:
        engine.dispose()


def test_an_unreachable_database_is_a_retryable_error() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    try:
        with pytest.raises(StorageError) as caught, transaction(engine) as session:
            session.execute(sa.text("SELECT 1"))
        assert isinstance(caught.value, RetryableStorageError)
        assert caught.value.retryable is True
    finally:
        engine.dispose()


def test_unsupported_urls_are_refused_with_a_hint() -> None:
    with pytest.raises(ValueError, match="postgresql\\+psycopg://"):
        make_engine("mysql://localhost/x")


def test_plain_postgresql_urls_use_psycopg_3() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:5432/test")
    try:
        assert engine.dialect.driver == "psycopg"
        assert not is_sqlite(engine)
    finally:
        engine.dispose()


def test_sqlite_writes_still_work_when_the_gate_file_cannot_be_made(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "db.sqlite3"
    (tmp_path / "db.sqlite3-writer.lock").mkdir()  # a folder in its way: open() fails
    engine = make_engine(f"sqlite:///{database}")
    try:
        for n in range(3):
            with transaction(engine) as session:
                if n == 0:
                    session.execute(sa.text("CREATE TABLE t (n INTEGER)"))
                session.execute(sa.text("INSERT INTO t VALUES (:n)"), {"n": n})
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 3
    finally:
        engine.dispose()
    warnings = [r for r in caplog.records if "writer gate unavailable" in r.getMessage()]
    assert len(warnings) == 1  # said once per process, not on every write
