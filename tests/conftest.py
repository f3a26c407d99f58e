"""Database fixtures shared by every test package.

``db_url`` is a freshly migrated database, once on SQLite and once on PostgreSQL:

- sqlite: a copy of a template file migrated once per test session (in tmp_path);
- postgres: one database ``palaute_t_<hex>`` per test session, migrated once and emptied
  (TRUNCATE, identities restarted) before each test: about 4x faster than creating a
  database per test. A test that leaves the schema changed gets a fresh database next;
  the database is dropped when the session ends (leftover connections terminated).

PostgreSQL is at ``postgresql+psycopg://postgres@127.0.0.1:5432/test`` (override with
PALAUTE_TEST_PG_URL). When it cannot be reached the postgres cases are skipped, except in
CI (``CI=true``) where they fail: PostgreSQL is mandatory there.

``empty_db_url`` is the same without migrations (for migration tests); ``engine`` is an
engine on ``db_url``.

And the fixtures the channel, service and web tests share: ``twilio_api`` and ``bot_api``,
the loopback fake Twilio REST API and Telegram Bot API (``fakes/``), ``telegram_sender``, a
Telegram sender on ``bot_api`` that never waits, and ``clock``, a clock
the test moves by hand (``tests.clock.Clock``; the simulator and staff page tests use their
own, which starts at another time).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from channels.telegram.sender import TelegramSender
from fakes.telegram_api import FakeBotAPI
from fakes.twilio_api import FakeTwilioAPI
from storage import migrate
from storage.db import make_engine
from tests.channels.telegram_support import fast_limiter
from tests.clock import Clock

PG_ADMIN_URL = os.environ.get(
    "PALAUTE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _libpq(url: str) -> str:
    """A SQLAlchemy URL as a libpq connection string for psycopg."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def _with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


class PostgresServer:
    """Creates and drops throw-away databases on the test PostgreSQL server."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._template: str | None = None
        self._shared: str | None = None
        self._shared_used = False
        self.problem: str | None = None
        try:
            with self._admin() as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            self.problem = f"PostgreSQL at {make_url(admin_url).render_as_string()}: {first}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(_libpq(self.admin_url), autocommit=True, connect_timeout=5)

    def require(self) -> None:
        if self.problem is None:
            return
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{self.problem} (PostgreSQL is mandatory in CI)")
        pytest.skip(f"{self.problem}; start PostgreSQL to run the postgres cases")

    def create(self, *, template: str | None = None, prefix: str = "palaute_t_") -> str:
        name = f"{prefix}{secrets.token_hex(6)}"
        with self._admin() as conn:
            if template is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            else:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )
        return name

    def drop(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def url(self, name: str) -> str:
        return _with_database(self.admin_url, name)

    def migrated_template(self) -> str:
        if self._template is None:
            name_tpl = self.create(prefix="palaute_tpl_")
            migrate.upgrade(self.url(name_tpl))  # disposes its engine: no connection stays
            self._template = name_tpl
        return self._template

    def clean_database(self) -> str:
        """The session's migrated database, emptied; recreated if a test broke it."""
        if self._shared is not None and self._shared_used and not self._empty(self._shared):
            self.drop(self._shared)
            self._shared = None
        if self._shared is None:
            self._shared = self.create(template=self.migrated_template())
        self._shared_used = True
        return self._shared

    def _empty(self, name: str) -> bool:
        """TRUNCATE every table but alembic_version; False if the schema is not at head."""
        try:
            with psycopg.connect(
                _libpq(self.url(name)), autocommit=True, connect_timeout=5
            ) as conn:
                conn.execute("SET lock_timeout = '3s'")
                version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
                if ",".join(sorted(str(row[0]) for row in version)) != migrate.head():
                    return False
                tables = [
                    str(row[0])
                    for row in conn.execute(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version'"
                    )
                ]
                if tables:
                    conn.execute(
                        sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                            sql.SQL(", ").join(sql.Identifier(t) for t in tables)
                        )
                    )
            return True
        except psycopg.Error:  # a lock held by a leftover connection, a dropped table...
            return False

    def close(self) -> None:
        for name in (self._shared, self._template):
            if name is not None:
                self.drop(name)
        self._shared = self._template = None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer(PG_ADMIN_URL)
    yield server
    if server.problem is None:
        server.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "palaute.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")  # the engine is disposed: the WAL is checkpointed
    return path


@pytest.fixture(params=BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(
    db_backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[str]:
    """A migrated database of its own for this test, on SQLite and on PostgreSQL."""
    if db_backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "palaute.sqlite3"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    server.require()
    yield server.url(server.clean_database())


@pytest.fixture
def empty_db_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with no tables at all, on SQLite and on PostgreSQL."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    server.require()
    name = server.create()
    try:
        yield server.url(name)
    finally:
        server.drop(name)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    made = make_engine(db_url)
    try:
        yield made
    finally:
        made.dispose()


@pytest.fixture
def twilio_api() -> Iterator[FakeTwilioAPI]:
    with FakeTwilioAPI() as api:
        yield api


@pytest.fixture
def bot_api() -> Iterator[FakeBotAPI]:
    with FakeBotAPI() as server:
        yield server


@pytest.fixture
def telegram_sender(bot_api: FakeBotAPI) -> Iterator[TelegramSender]:
    with TelegramSender(
        bot_api.token, bot_api.base_url, limiter=fast_limiter(), timeout=5
    ) as client:
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()
