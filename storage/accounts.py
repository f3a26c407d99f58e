"""Staff accounts: users, their granted service points, the sign-in lockout.

Emails are stored lower-cased (callers pass them normalised: ``service.accounts``
does), so the unique constraint makes them unique whatever their case. The lockout
counter is kept in one conditional UPDATE, so concurrent failed attempts in several
workers all count.

Like the other repositories, functions take the caller's session and do not commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from storage.account_tables import StaffPointRow, StaffUserRow
from storage.sql import dialect_name
from storage.tables import UTCDateTime, table_of

_users = table_of(StaffUserRow)
_points = table_of(StaffPointRow)


class EmailTaken(ValueError):
    """A user with this email exists already."""


@dataclass(frozen=True)
class StaffUserRecord:
    id: int
    email: str
    password_hash: str
    role: str
    ui_language: str | None
    disabled_at: datetime | None
    failed_logins: int
    locked_until: datetime | None
    auth_epoch: int
    created_at: datetime
    last_login_at: datetime | None
    points: frozenset[str]


def add_user(
    session: Session,
    *,
    email: str,
    password_hash: str,
    role: str,
    points: Iterable[str],
    now: datetime,
    ui_language: str | None = None,
) -> int:
    """Insert a user with their points; raises EmailTaken when the email is in use."""
    insert: Any = (postgresql if dialect_name(session) == "postgresql" else sqlite).insert(_users)
    found = session.execute(
        insert.values(
            email=email,
            password_hash=password_hash,
            role=role,
            ui_language=ui_language,
            failed_logins=0,
            auth_epoch=0,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["email"])
        .returning(_users.c.id)
    ).scalar_one_or_none()
    if found is None:
        raise EmailTaken(email)
    user_id = int(found)
    set_points(session, user_id, points)
    return user_id


def _records(session: Session, where: Any) -> list[StaffUserRecord]:
    rows = session.execute(sa.select(_users).where(where).order_by(_users.c.email)).all()
    if not rows:
        return []
    ids = [int(r.id) for r in rows]
    granted: dict[int, set[str]] = {i: set() for i in ids}
    for user_id, point in session.execute(
        sa.select(_points.c.user_id, _points.c.service_point).where(_points.c.user_id.in_(ids))
    ):
        granted[int(user_id)].add(str(point))
    return [
        StaffUserRecord(
            id=int(r.id),
            email=r.email,
            password_hash=r.password_hash,
            role=r.role,
            ui_language=r.ui_language,
            disabled_at=r.disabled_at,
            failed_logins=int(r.failed_logins),
            locked_until=r.locked_until,
            auth_epoch=int(r.auth_epoch),
            created_at=r.created_at,
            last_login_at=r.last_login_at,
            points=frozenset(granted[int(r.id)]),
        )
        for r in rows
    ]


def user_by_email(session: Session, email: str) -> StaffUserRecord | None:
    found = _records(session, _users.c.email == email)
    return found[0] if found else None


def user_by_id(session: Session, user_id: int) -> StaffUserRecord | None:
    found = _records(session, _users.c.id == user_id)
    return found[0] if found else None


def list_users(session: Session) -> list[StaffUserRecord]:
    """Every user, by email."""
    return _records(session, sa.true())


def set_points(session: Session, user_id: int, points: Iterable[str]) -> None:
    """Replace the user's granted service points with ``points``."""
    session.execute(sa.delete(_points).where(_points.c.user_id == user_id))
    wanted = sorted(set(points))
    if wanted:
        session.execute(
            sa.insert(_points), [{"user_id": user_id, "service_point": p} for p in wanted]
        )


def set_disabled(session: Session, user_id: int, disabled_at: datetime | None) -> bool:
    """Disable (a time) or enable (None) the user; disabling ends their sessions."""
    values: dict[str, Any] = {"disabled_at": disabled_at}
    if disabled_at is not None:
        values["auth_epoch"] = _users.c.auth_epoch + 1
    else:
        values.update(failed_logins=0, locked_until=None)
    result = session.execute(sa.update(_users).where(_users.c.id == user_id).values(**values))
    return bool(getattr(result, "rowcount", 0))


def set_password_hash(session: Session, user_id: int, password_hash: str) -> int | None:
    """Store a new password hash, lift any lockout and end the user's other sessions.

    Returns the new ``auth_epoch`` (None: no such user).
    """
    found = session.execute(
        sa.update(_users)
        .where(_users.c.id == user_id)
        .values(
            password_hash=password_hash,
            failed_logins=0,
            locked_until=None,
            auth_epoch=_users.c.auth_epoch + 1,
        )
        .returning(_users.c.auth_epoch)
    ).scalar_one_or_none()
    return None if found is None else int(found)


def rehash(session: Session, user_id: int, old_hash: str, new_hash: str) -> None:
    """Replace a hash made with older parameters (same password; sessions stay)."""
    session.execute(
        sa.update(_users)
        .where(_users.c.id == user_id, _users.c.password_hash == old_hash)
        .values(password_hash=new_hash)
    )


def set_ui_language(session: Session, user_id: int, language: str | None) -> None:
    session.execute(sa.update(_users).where(_users.c.id == user_id).values(ui_language=language))


def record_failure(
    session: Session, user_id: int, now: datetime, *, limit: int, lock_until: datetime
) -> tuple[int, datetime | None]:
    """Count a failed sign-in; the ``limit``-th failure in a row locks until ``lock_until``.

    A lock that has run out starts the count again. Returns (failures in a row, locked
    until or None).
    """
    expired = sa.and_(_users.c.locked_until.is_not(None), _users.c.locked_until <= now)
    count = sa.case((expired, 1), else_=_users.c.failed_logins + 1)
    row = session.execute(
        sa.update(_users)
        .where(_users.c.id == user_id)
        .values(
            failed_logins=count,
            locked_until=sa.case(
                (count >= limit, sa.literal(lock_until, UTCDateTime())),
                (expired, None),
                else_=_users.c.locked_until,
            ),
        )
        .returning(_users.c.failed_logins, _users.c.locked_until)
    ).one()
    return int(row.failed_logins), row.locked_until


def record_success(session: Session, user_id: int, now: datetime) -> None:
    session.execute(
        sa.update(_users)
        .where(_users.c.id == user_id)
        .values(failed_logins=0, locked_until=None, last_login_at=now)
    )
