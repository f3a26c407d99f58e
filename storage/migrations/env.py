"""Alembic environment. Normally driven by ``storage.migrate`` (``palaute db upgrade``),
which hands over an open connection; the ``alembic`` CLI works too with ``-x url=...``.
"""

from __future__ import annotations

import importlib
import pkgutil

from alembic import context
from sqlalchemy import Connection

import storage
from storage.db import make_engine
from storage.tables import METADATA

# Every table model in the package registers on METADATA (autogenerate sees them all).
for _module in pkgutil.iter_modules(storage.__path__):
    if not _module.ispkg:
        importlib.import_module(f"storage.{_module.name}")

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=METADATA,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database: alembic -c storage/alembic.ini -x url=URL ...")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_online()
