"""Apply Alembic migrations from code (``palaute db upgrade``, tests, deploy hooks).

No ``alembic.ini`` is needed at run time: the configuration is built here and the
migrations folder ships inside the package (``storage/migrations``).

Migrations written in parallel may branch from the same parent (e.g. one per channel);
``upgrade`` applies every branch ("heads"), and a revision is reported as the sorted,
comma-joined heads ("0002_sms,0004_followups"), so ``current(url) == head()`` holds
exactly when the database is up to date.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from storage.db import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


@contextmanager
def _connected(url_or_engine: str | Engine) -> Iterator[tuple[Config, Engine]]:
    owned = isinstance(url_or_engine, str)
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        yield alembic_config(), engine
    finally:
        if owned:
            engine.dispose()


def upgrade(url_or_engine: str | Engine, revision: str = "heads") -> None:
    """Bring the database up to ``revision`` (default: every newest revision)."""
    with _connected(url_or_engine) as (config, engine), engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()


def downgrade(url_or_engine: str | Engine, revision: str) -> None:
    """Go back to ``revision`` ("base" drops every palaute table, and its data)."""
    with _connected(url_or_engine) as (config, engine), engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
        connection.commit()


def current(url_or_engine: str | Engine) -> str | None:
    """The revision(s) the database is at (None: no palaute tables yet)."""
    with _connected(url_or_engine) as (_config, engine), engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(sorted(heads)) if heads else None


def head() -> str:
    """The newest revision(s) in the code."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if not heads:  # pragma: no cover - there is always 0001_core
        raise RuntimeError("no migrations found in " + str(MIGRATIONS_DIR))
    return ",".join(sorted(heads))


def is_up_to_date(url_or_engine: str | Engine) -> bool:
    return current(url_or_engine) == head()
