"""API tokens for ``POST /api/visits``: made once, shown once, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import Engine

from storage import api_tokens as token_store
from storage.api_tokens import ApiToken, TokenNameTaken, token_by_hash
from storage.db import read_only, transaction

__all__ = [
    "ApiToken",
    "TokenNameTaken",
    "authenticate",
    "create",
    "hash_token",
    "list_all",
    "new_token",
    "revoke",
]

TOKEN_PREFIX = "plt_"


def new_token() -> str:
    """A fresh bearer token (256 random bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the database keeps: the hex SHA-256 of the token as sent."""
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


def authenticate(engine: Engine, token: str) -> ApiToken | None:
    """The active token sent as ``token`` (None: unknown or revoked). Raises StorageError."""
    with transaction(read_only(engine)) as session:
        return token_by_hash(session, hash_token(token))


def create(
    engine: Engine, organisation: str, name: str, now: datetime, *, source: str | None = None
) -> str:
    """Make the token ``name`` and return it: the only time it is seen (only its hash is
    stored). Raises TokenNameTaken while an active token has that name, StorageError."""
    token = new_token()
    with transaction(engine) as session:
        token_store.create_token(session, organisation, name, hash_token(token), now, source=source)
    return token


def revoke(engine: Engine, organisation: str, name: str, now: datetime) -> bool:
    """Stop accepting the active token ``name``; False when there is none."""
    with transaction(engine) as session:
        return token_store.revoke_token(session, organisation, name, now)


def list_all(engine: Engine) -> list[ApiToken]:
    """Every token, active and revoked, by organisation and name (never the tokens)."""
    with transaction(read_only(engine)) as session:
        return token_store.list_tokens(session)
