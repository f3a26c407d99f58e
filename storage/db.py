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

import fcntl
import logging
import os
import sqlite3
import threading
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
# With background checkpoints: how often the WAL is copied back into the database, and
# the size (pages) at which a committing connection still does it itself (a safety net).
SQLITE_CHECKPOINT_EVERY_S = 0.5
SQLITE_AUTOCHECKPOINT_PAGES = 8_000
_BEGIN_OPTION = "palaute_sqlite_begin"

log = logging.getLogger(__name__)


def make_engine(
    url: str, *, echo: bool = False, background_checkpoints: bool = False, **kwargs: Any
) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

    ``background_checkpoints`` (SQLite files; for long-running servers): a daemon thread
    checkpoints the WAL twice a second, so requests do not pay for it. Without it SQLite's
    auto-checkpoint runs inside whichever commit crosses 1000 WAL pages and that commit
    waits for two fsyncs (tens of milliseconds). The thread starts with the first
    connection and stops when the engine is disposed.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(
            url, echo=echo, background_checkpoints=background_checkpoints, **kwargs
        )
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            # Plain postgresql:// (as many hosts hand out) would mean psycopg2: use psycopg 3.
            parsed = parsed.set(drivername="postgresql+psycopg")
        # No pre-ping round trip per checkout: a connection found dead raises a retryable
        # StorageError (connection_invalidated) and the pool replaces it; the conversation
        # service retries such errors itself.
        kwargs.setdefault("hide_parameters", True)  # see _sqlite_engine
        kwargs.setdefault("pool_recycle", 1800)
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
        return create_engine(parsed, echo=echo, **kwargs)
    raise ValueError(
        f"unsupported DATABASE_URL backend {backend!r}: use sqlite:///path/to/file.sqlite3 "
        "or postgresql+psycopg://user@host:5432/dbname"
    )


def _sqlite_engine(url: str, *, echo: bool, background_checkpoints: bool, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    in_memory = parsed.database in (None, "", ":memory:")
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    busy_timeout_ms = int(float(connect_args["timeout"]) * 1000)
    connect_args.setdefault("check_same_thread", False)
    if in_memory:
        kwargs.setdefault("poolclass", StaticPool)
    elif parsed.database and not parsed.database.startswith("file:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # Parameters are phone numbers and answers: never in an error message or a log.
    kwargs.setdefault("hide_parameters", True)
    engine = create_engine(url, echo=echo, connect_args=connect_args, **kwargs)
    checkpointer: _Checkpointer | None = None
    if background_checkpoints and not in_memory and not str(parsed.database).startswith("file:"):
        checkpointer = _Checkpointer(str(Path(str(parsed.database)).expanduser()))
        event.listen(engine, "engine_disposed", lambda _engine: checkpointer.stop())

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
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            cursor.execute("PRAGMA foreign_keys=ON")
            # SQLite's lower() knows only ASCII: report searches fold "Ä" like PostgreSQL.
            dbapi_connection.create_function("palaute_casefold", 1, _casefold, deterministic=True)
            if checkpointer is not None:
                cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
                checkpointer.start()
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
        statement = f"BEGIN {mode}"
        # Straight to the driver: through exec_driver_sql this costs ~80 µs per transaction.
        try:
            connection.connection.dbapi_connection.execute(statement)
        except sqlite3.Error as error:  # "database is locked" after the busy timeout...
            raise sa_exc.DBAPIError.instance(statement, (), error, sqlite3.Error) from error

    return engine


def _casefold(text: str | None) -> str | None:
    return text.casefold() if isinstance(text, str) else text


class _Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection every half second.

    PASSIVE never waits for readers or writers; a round that finds another checkpoint
    running (another gunicorn worker's) is simply skipped.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, name="palaute-sqlite-checkpoint", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        with self._lock:
            thread = self._thread
            self._thread = None
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._stop = threading.Event()

    def _run(self) -> None:
        stop = self._stop
        try:
            connection = sqlite3.connect(self.path, timeout=0, check_same_thread=False)
        except sqlite3.Error as error:  # the pool's own auto-checkpoint still works
            log.warning("SQLite background checkpoints unavailable: %s", error)
            return
        try:
            while not stop.wait(SQLITE_CHECKPOINT_EVERY_S):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:  # busy: another checkpoint; retry next round
                    log.debug("SQLite checkpoint skipped: %s", error)
        finally:
            connection.close()


class _WriterGate:
    """Hands SQLite's write lock from one writer to the next without sleeping in between.

    SQLite's busy handler polls a locked database after sleeping 1, 2, 5, 10 ... ms, so a
    writer that finds the lock taken loses milliseconds after it was freed. Writers that
    go through ``transaction()`` queue here first instead: threads of one process on a
    lock, processes on an advisory ``flock`` of ``<database>-writer.lock``, which the
    kernel hands to the next waiter the moment it is released (or its holder dies).
    The gate only orders writers; SQLite's own lock still protects the data, so a writer
    that bypasses the gate is as safe as before, only slower. A waiter waits as long as
    the holder's transaction lasts (that holder has SQLite's write lock too, so nobody
    could write meanwhile anyway).
    """

    def __init__(self, database: str) -> None:
        self.path = database + "-writer.lock"
        self._threads = threading.Lock()
        self._local = threading.local()
        self._fd: int | None = None
        self._fd_pid = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        if getattr(self._local, "inside", False):  # nested in this thread: already ours
            yield
            return
        if not self._threads.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            yield  # give up ordering; SQLite's busy timeout decides
            return
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)  # blocks without the GIL until it is ours
            self._local.inside = True
            try:
                yield
            finally:
                self._local.inside = False
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _file(self) -> int | None:
        # One descriptor per process: after a fork the parent's descriptor would share
        # the parent's lock instead of competing with it. A file that cannot be opened
        # (a read-only folder) leaves this process's writers to SQLite's busy handler.
        if self._fd_pid != os.getpid():
            self._fd_pid = os.getpid()
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as error:
                log.warning("SQLite writer gate unavailable (%s): %s", self.path, error)
                self._fd = None
        return self._fd


_GATES: dict[str, _WriterGate] = {}
_GATES_LOCK = threading.Lock()


def _writer_gate(engine: Engine) -> _WriterGate | None:
    """The gate of a SQLite file engine whose transactions write (BEGIN IMMEDIATE)."""
    if engine.dialect.name != "sqlite":
        return None
    if engine.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE") != "IMMEDIATE":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    gate = _GATES.get(database)
    if gate is None:
        # Spellings of one file share its gate: keyed by the spelling, made for the path.
        path = str(Path(database).expanduser().resolve())
        with _GATES_LOCK:
            gate = _GATES.get(path) or _GATES.setdefault(path, _WriterGate(path))
            _GATES[database] = gate
    return gate


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
    SQLite writers queue at the database's ``_WriterGate`` first.
    """
    gate = _writer_gate(engine)
    if gate is None:
        with _session(engine) as session:
            yield session
        return
    with gate.held(), _session(engine) as session:
        yield session


@contextmanager
def _session(engine: Engine) -> Iterator[Session]:
    session = Session(engine, expire_on_commit=False)
    try:
        with session.begin():
            yield session
    except sa_exc.DBAPIError as error:
        # Not chained: the driver's message can go on with values (PostgreSQL's "DETAIL:
        # Failing row contains (..., +358...)"), and a logged traceback would print it.
        # The translation keeps its first line and the statement without values.
        translated = translate(error)
        translated.statement = error.statement
        raise translated from None
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
