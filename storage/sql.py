"""Small dialect-aware statement helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

_CONNECTION = "palaute_connection"


def connection_of(session: Session) -> sa.Connection:
    """``session.connection()``, remembered for the session's current transaction.

    ``Session.connection()`` costs ~25 µs of ORM bookkeeping per call and one message
    runs a dozen statements; within one transaction the connection cannot change.
    """
    current = session.get_transaction()
    cached = session.info.get(_CONNECTION)
    if cached is not None and current is not None and cached[0] is current:
        connection: sa.Connection = cached[1]
        return connection
    connection = session.connection()
    session.info[_CONNECTION] = (session.get_transaction(), connection)
    return connection


def execute(session: Session, statement: Any, params: dict[str, Any] | None = None) -> Any:
    """Run a Core statement on the session's connection (skips the ORM's per-call work).

    Same transaction as ``session.execute``; used on the per-message path.
    """
    return connection_of(session).execute(statement, params)


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


# --- the per-message fast path -----------------------------------------------------------------


class Prepared:
    """A Core statement compiled once per dialect and run straight on the DBAPI cursor.

    One inbound message runs a handful of tiny statements. Through ``Connection.execute``
    each costs SQLAlchemy's per-call work (cache key, execution context, result metadata)
    which on SQLite is several times what the database itself takes. A ``Prepared`` keeps
    the SQL text SQLAlchemy compiled for the dialect and applies the columns' own bind and
    result processors (``UTCDateTime``, JSON), so values and rows are exactly what
    ``execute`` would give. It runs on the session's connection: same transaction, same
    BEGIN IMMEDIATE, same commit. Driver errors come out as SQLAlchemy's ``DBAPIError``
    (what ``storage.db.transaction`` translates into a ``StorageError``).

    ``columns``: for an INSERT/UPDATE without ``.values()``, the columns given at run time.
    """

    def __init__(self, statement: Any, columns: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.columns = list(columns) if columns is not None else None
        self._compiled: dict[str, _Compiled] = {}

    def for_dialect(self, dialect: sa.Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = _Compiled(self.statement, self.columns, dialect)
            self._compiled[dialect.name] = compiled
        return compiled

    def run(self, session: Session, params: dict[str, Any] | None = None) -> Rows:
        """Execute with ``params``; the returned rows (if any) are read lazily."""
        connection = connection_of(session)
        compiled = self.for_dialect(connection.dialect)
        cursor = _driver(connection).cursor()
        values = compiled.bind(params or {})
        with _dbapi_errors(connection, compiled.sql, values):
            cursor.execute(compiled.sql, values)
        return Rows(cursor, compiled, connection)

    def run_many(self, session: Session, rows: Sequence[dict[str, Any]]) -> None:
        """Execute once per parameter set, in order (no RETURNING)."""
        if not rows:
            return
        connection = connection_of(session)
        compiled = self.for_dialect(connection.dialect)
        cursor = _driver(connection).cursor()
        values = [compiled.bind(row) for row in rows]
        with _dbapi_errors(connection, compiled.sql, values[0]):
            if len(values) == 1:  # psycopg's executemany sets up pipeline mode: slower for one
                cursor.execute(compiled.sql, values[0])
            else:
                cursor.executemany(compiled.sql, values)


class _Compiled:
    def __init__(self, statement: Any, columns: list[str] | None, dialect: sa.Dialect) -> None:
        compiled: Any = statement.compile(dialect=dialect, column_keys=columns)
        if compiled.escaped_bind_names:  # pragma: no cover - only plain parameter names here
            raise ValueError(f"unsupported bind names in {compiled.string!r}")
        self.sql: str = compiled.string
        self.positions: list[str] | None = (
            list(compiled.positiontup) if compiled.positional else None
        )
        self.defaults: dict[str, Any] = dict(compiled.construct_params(_check=False))
        self.processors: dict[str, Any] = dict(compiled._bind_processors)
        self.names: tuple[str, ...] = tuple(column[0] for column in compiled._result_columns)
        self.results: list[Any] = [
            column[3]._cached_result_processor(dialect, None) for column in compiled._result_columns
        ]

    def bind(self, params: dict[str, Any]) -> Any:
        values = {**self.defaults, **params}
        for name, process in self.processors.items():
            if name in values:
                values[name] = process(values[name])
        if self.positions is not None:
            return tuple(values[name] for name in self.positions)
        return values

    def shape(self, raw: Sequence[Any]) -> Any:  # a row: sa.Row-like (_RowTuple)
        values = tuple(
            process(value) if process is not None else value
            for process, value in zip(self.results, raw, strict=True)
        )
        row: sa.Row[Any] = _row(self.names, values)
        return row


class Rows:
    """The rows of one ``Prepared.run`` (processed like ``execute`` would)."""

    def __init__(self, cursor: Any, compiled: _Compiled, connection: sa.Connection) -> None:
        self._cursor = cursor
        self._compiled = compiled
        self._connection = connection

    def first(self) -> Any:
        with _dbapi_errors(self._connection, self._compiled.sql, None):
            raw = self._cursor.fetchone()
        return None if raw is None else self._compiled.shape(raw)

    def all(self) -> list[Any]:
        with _dbapi_errors(self._connection, self._compiled.sql, None):
            raws = self._cursor.fetchall()
        return [self._compiled.shape(raw) for raw in raws]

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)


def _row(names: tuple[str, ...], values: tuple[Any, ...]) -> Any:
    return _RowTuple(names, values)


class _RowTuple(tuple[Any, ...]):
    """A tuple whose items are also attributes by column name (like ``sa.Row``)."""

    _names: tuple[str, ...]

    def __new__(cls, names: tuple[str, ...], values: tuple[Any, ...]) -> _RowTuple:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._names.index(name)]
        except ValueError:
            raise AttributeError(name) from None


def _driver(connection: sa.Connection) -> Any:
    return connection.connection.driver_connection


@contextmanager
def _dbapi_errors(connection: sa.Connection, statement: str, params: Any) -> Iterator[None]:
    dbapi = connection.dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as error:
        raw = connection.connection.dbapi_connection
        disconnect = connection.dialect.is_disconnect(error, raw, None)
        if disconnect:
            connection.invalidate(error)
        raise sa_exc.DBAPIError.instance(
            statement, params, error, dbapi.Error, connection_invalidated=disconnect
        ) from error


# --- many ids in one parameter -----------------------------------------------------------------


def one_of(session: Session, column: Any, values: Sequence[Any]) -> Any:
    """``column IN (values)``, with the values in one array parameter on PostgreSQL.

    ``IN (:v1, ..., :v100)`` makes a new, long SQL text for every list length, which the
    driver parses again on every execution; ``column = ANY(:values)`` is one short
    statement whatever the count (the same index scan). SQLite gets a plain ``IN``.
    """
    items = list(values)
    if dialect_name(session) == "postgresql":
        array = sa.bindparam(None, items, type_=postgresql.ARRAY(column.type))
        return column == sa.any_(array)
    return column.in_(items)
