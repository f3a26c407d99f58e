"""The guard on ``storage.sql.Prepared``: the SQLAlchemy internals it reads are still there.

``Prepared`` (the per-message fast path) reads three private parts of a compiled statement:
``_bind_processors``, ``_result_columns`` and ``TypeEngine._cached_result_processor``. They
are why pyproject pins SQLAlchemy below its next minor release. When an upgrade changes
them, these tests fail with what changed, before any value is stored wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from storage.sql import Prepared
from storage.tables import JSONType, UTCDateTime

UPGRADE_HINT = (
    f"SQLAlchemy {sa.__version__} changed a compiled-statement internal that "
    "storage/sql.py Prepared reads ({what}). Adapt storage.sql._Compiled to the new "
    "internals, or run those statements through Connection.execute, before widening the "
    "sqlalchemy pin in pyproject.toml."
)

WHEN = datetime(2026, 5, 14, 9, 12, 30, tzinfo=UTC)
STATE = {"step": "overall", "answers": {"overall": 4}, "text": "ääkköset ja 中文"}

# One typed value of each kind the fast path converts: an aware timestamp and JSON.
ROUND_TRIP = sa.select(
    sa.bindparam("when", type_=UTCDateTime()).label("when"),
    sa.bindparam("state", type_=JSONType).label("state"),
    sa.bindparam("answers", type_=sa.Integer()).label("answers"),
)


def compiled_for(dialect: sa.Dialect) -> Any:
    return ROUND_TRIP.compile(dialect=dialect)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.psycopg.dialect()])
def test_compiled_statements_still_have_what_prepared_reads(dialect: sa.Dialect) -> None:
    compiled = compiled_for(dialect)

    bind_processors = getattr(compiled, "_bind_processors", None)
    assert isinstance(bind_processors, Mapping), UPGRADE_HINT.format(
        what=f"_bind_processors is {type(bind_processors).__name__}, not a mapping"
    )
    assert set(bind_processors) <= {"when", "state", "answers"}, UPGRADE_HINT.format(
        what=f"_bind_processors is keyed by {sorted(bind_processors)!r}, not by bind name"
    )
    assert all(callable(process) for process in bind_processors.values()), UPGRADE_HINT.format(
        what="_bind_processors holds something that is not callable"
    )

    columns = getattr(compiled, "_result_columns", None)
    assert isinstance(columns, list) and len(columns) == 3, UPGRADE_HINT.format(
        what=f"_result_columns is {columns!r}, not one entry per selected column"
    )
    names = [column[0] for column in columns]
    assert names == ["when", "state", "answers"], UPGRADE_HINT.format(
        what=f"_result_columns[i][0] gives {names!r}, not the column names"
    )
    types = [column[3] for column in columns]
    assert all(isinstance(kind, sa.types.TypeEngine) for kind in types), UPGRADE_HINT.format(
        what=f"_result_columns[i][3] gives {types!r}, not the column types"
    )
    for kind in types:
        reader = getattr(kind, "_cached_result_processor", None)
        assert callable(reader), UPGRADE_HINT.format(
            what=f"{type(kind).__name__} has no _cached_result_processor"
        )
        process = reader(dialect, None)
        assert process is None or callable(process), UPGRADE_HINT.format(
            what="_cached_result_processor(dialect, None) gives neither None nor a function"
        )


def test_prepared_gives_what_connection_execute_gives(engine: Engine) -> None:
    """Bind and result processors applied the same way on SQLite and PostgreSQL."""
    params = {"when": WHEN, "state": STATE, "answers": 7}
    with Session(engine) as session:
        fast = Prepared(ROUND_TRIP).run(session, params).first()
        public = session.connection().execute(ROUND_TRIP, params).one()

    assert tuple(public) == (WHEN, STATE, 7)
    assert tuple(fast) == tuple(public), UPGRADE_HINT.format(
        what=f"Prepared gave {tuple(fast)!r} where Connection.execute gave {tuple(public)!r}"
    )
    assert (fast.when, fast.state, fast.answers) == (WHEN, STATE, 7), UPGRADE_HINT.format(
        what="the rows' attributes by column name (from _result_columns) changed"
    )
