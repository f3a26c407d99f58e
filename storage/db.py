"""Engines and transactions. Nothing connects at import time: call ``make_engine``.

SQLite (the default) is set up for several processes and threads writing at once:
WAL journal, a busy timeout, foreign keys on, and every transaction started with
``BEGIN IMMEDIATE`` so that writers queue for the write lock up front instead of
failing with "database is locked" halfway through (SQLAlchemy's pysqlite recipe:
the driver's own BEGIN is switched off and SQLAlchemy's ``begin`` event emits ours).
Read-only work can use ``read_only(engine)`` which starts a plain deferred BEGIN.

PostgreSQL is used through psycopg 3: ``postgresql+psycopg://user@host:5432/db``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

from storage.errors import StorageError, translate

SQLITE_BUSY_TIMEOUT_MS = 30_000
_BEGIN_OPTION = "palaute_sqlite_begin"


def make_engine(url: str, *, echo: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, echo=echo, **kwargs)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            # Plain postgresql:// (as many hosts hand out) would mean psycopg2: use psycopg 3.
            parsed = parsed.set(drivername="postgresql+psycopg")
        # No pre-ping round trip per checkout: a connection found dead raises a retryable
        # StorageError (connection_invalidated) and the pool replaces it; the conversation
        # service retries such errors itself.
        kwargs.setdefault("pool_recycle", 1800)
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
        return create_engine(parsed, echo=echo, **kwargs)
    raise ValueError(
        f"unsupported DATABASE_URL backend {backend!r}: use sqlite:///path/to/file.sqlite3 "
        "or postgresql+psycopg://user@host:5432/dbname"
    )


def _sqlite_engine(url: str, *, echo: bool, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    in_memory = parsed.database in (None, "", ":memory:")
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    connect_args.setdefault("check_same_thread", False)
    if in_memory:
        kwargs.setdefault("poolclass", StaticPool)
    elif parsed.database and not parsed.database.startswith("file:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 driver (it would BEGIN lazily,
        # only before DML); the "begin" hook below emits the BEGIN we want.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def read_only(engine: Engine) -> Engine:
    """The same engine, but SQLite transactions start DEFERRED (readers do not queue)."""
    if is_sqlite(engine):
        return engine.execution_options(**{_BEGIN_OPTION: "DEFERRED"})
    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit at the end, roll back on any error.

    Database errors come out as ``storage.errors.StorageError`` (see ``retryable``).
    """
    session = Session(engine, expire_on_commit=False)
    try:
        with session.begin():
            yield session
    except sa_exc.DBAPIError as error:
        raise translate(error) from error
    except sa_exc.StatementError as error:
        # A value refused before reaching the database (e.g. a naive datetime): the bug
        # is the caller's; surface the original ValueError/TypeError with its message.
        if isinstance(error.orig, ValueError | TypeError):
            raise error.orig from error
        raise
    except StorageError:
        raise
    finally:
        session.close()
