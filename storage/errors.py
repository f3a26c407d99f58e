"""Typed storage errors: each says whether retrying the same operation can help.

Callers (webhooks, workers) look only at ``retryable``: a retryable error means
"nothing was written, try again later" (a webhook answers 503 so the provider
redelivers); a permanent one means the input or the schema is wrong.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc


class StorageError(Exception):
    """A database operation failed; nothing of the transaction was written.

    The message is the driver's first line (no values); ``statement`` the SQL that
    failed, with placeholders (set by ``storage.db.transaction``).
    """

    retryable: bool = False
    statement: str | None = None


class RetryableStorageError(StorageError):
    """Busy/locked database, lost connection, deadlock or a concurrent-write race.

    The transaction was rolled back; the same call can simply be repeated.
    """

    retryable = True


class PermanentStorageError(StorageError):
    """A bug or a schema problem (e.g. migrations not applied): retrying will not help."""

    retryable = False


class SchemaNotReadyError(PermanentStorageError):
    """The database has no palaute tables yet: run ``palaute db upgrade``."""


def translate(error: sa_exc.DBAPIError) -> StorageError:
    """Map a SQLAlchemy/DBAPI error to a typed storage error (the original is chained)."""
    message = str(error.orig) if error.orig is not None else str(error)
    first_line = message.strip().splitlines()[0] if message.strip() else type(error).__name__
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
        lowered = message.lower()
        if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
            return SchemaNotReadyError(
                f"the database schema is missing ({first_line}); run `palaute db upgrade`"
            )
        return RetryableStorageError(f"database busy or unreachable: {first_line}")
    if isinstance(error, sa_exc.IntegrityError):
        # Our own statements only violate constraints when two transactions race
        # (same provider message id, two starts for one contact): a retry sees the winner.
        return RetryableStorageError(f"concurrent write conflict: {first_line}")
    if error.connection_invalidated:
        return RetryableStorageError(f"database connection lost: {first_line}")
    if isinstance(error, sa_exc.ProgrammingError) and "does not exist" in message.lower():
        return SchemaNotReadyError(
            f"the database schema is missing ({first_line}); run `palaute db upgrade`"
        )
    return PermanentStorageError(f"database error: {first_line}")
