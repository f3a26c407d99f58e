"""API tokens for ``POST /api/visits``: made once, shown once, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Engine

from storage.api_tokens import ApiToken, token_by_hash
from storage.db import read_only, transaction

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
