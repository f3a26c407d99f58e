"""API tokens for ``POST /api/visits``: only their SHA-256 is stored; revoked, never deleted.

Like the other repositories, functions take the caller's session and do not commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from storage.followup_tables import ApiTokenRow
from storage.sql import dialect_name
from storage.tables import table_of

_tokens = table_of(ApiTokenRow)


@dataclass(frozen=True)
class ApiToken:
    id: int
    organisation: str
    name: str
    source: str  # the visits' source: fixed when the token was made
    created_at: datetime
    revoked_at: datetime | None


class TokenNameTaken(ValueError):
    """An active token with this name exists already; revoke it first (retry won't help)."""


def create_token(
    session: Session,
    organisation: str,
    name: str,
    token_hash: str,
    now: datetime,
    source: str | None = None,
) -> int:
    """Store a token; its visits are stored under ``source`` (default: the name)."""
    if find_active_token(session, organisation, name) is not None:
        raise TokenNameTaken(
            f"an active API token named {name!r} already exists for {organisation!r}: "
            f"revoke it first (palaute api-token revoke {name})"
        )
    insert: Any = (postgresql if dialect_name(session) == "postgresql" else sqlite).insert(_tokens)
    result = session.execute(
        insert.values(
            organisation=organisation,
            name=name,
            source=source or name,
            token_hash=token_hash,
            created_at=now,
        ).returning(_tokens.c.id)
    )
    return int(result.scalar_one())


def find_active_token(session: Session, organisation: str, name: str) -> ApiToken | None:
    row = session.execute(
        sa.select(_tokens).where(
            _tokens.c.organisation == organisation,
            _tokens.c.name == name,
            _tokens.c.revoked_at.is_(None),
        )
    ).first()
    return _token(row) if row is not None else None


def token_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    row = session.execute(
        sa.select(_tokens).where(_tokens.c.token_hash == token_hash, _tokens.c.revoked_at.is_(None))
    ).first()
    return _token(row) if row is not None else None


def revoke_token(session: Session, organisation: str, name: str, now: datetime) -> bool:
    result = session.execute(
        sa.update(_tokens)
        .where(
            _tokens.c.organisation == organisation,
            _tokens.c.name == name,
            _tokens.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


def list_tokens(session: Session) -> list[ApiToken]:
    rows = session.execute(sa.select(_tokens).order_by(_tokens.c.organisation, _tokens.c.name))
    return [_token(r) for r in rows]


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=int(row.id),
        organisation=row.organisation,
        name=row.name,
        source=row.source,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
