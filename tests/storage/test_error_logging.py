"""A write that fails leaves no value (a phone number) in the error or in the log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from storage.contacts import ContactStore
from storage.db import transaction
from storage.errors import StorageError
from tests.storage.support import NOW, SECRET

NUMBER = "+358401234567"
log = logging.getLogger(__name__)


@contextmanager
def new_contacts_refused(engine: Engine) -> Iterator[None]:
    """Make every new contact fail as a constraint would, in each dialect's own way.

    Undone afterwards: the PostgreSQL test database is shared (emptied between tests).
    """
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                sa.text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON contacts "
                    "BEGIN SELECT RAISE(ABORT, 'contacts are refused'); END"
                )
            )
        else:  # PostgreSQL reports the failing row (with the number) in its DETAIL line
            connection.execute(
                sa.text(
                    "ALTER TABLE contacts ADD CONSTRAINT refuse "
                    "CHECK (length(address) < 5) NOT VALID"
                )
            )
    try:
        yield
    finally:
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                connection.execute(sa.text("DROP TRIGGER refuse"))
            else:
                connection.execute(sa.text("ALTER TABLE contacts DROP CONSTRAINT refuse"))


def test_a_failed_write_logs_no_phone_number(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with (
        new_contacts_refused(engine),
        pytest.raises(StorageError) as raised,
        transaction(engine) as session,
    ):
        ContactStore(SECRET).find_or_create(session, "sms", NUMBER, NOW)
    log.error("storing the contact failed: %s", raised.value, exc_info=raised.value)
    assert "contacts" in caplog.text  # the log says what failed ...
    assert "401234567" not in caplog.text  # ... but not whose number
    assert "401234567" not in str(raised.value)
    statement = raised.value.statement  # the SQL, for debugging, without values
    assert statement is not None and "INSERT INTO contacts" in statement
    assert "401234567" not in statement
