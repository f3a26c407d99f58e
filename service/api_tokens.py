"""API tokens for ``POST /api/visits``: made once, shown once, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "plt_"


def new_token() -> str:
    """A fresh bearer token (256 random bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the database keeps: the hex SHA-256 of the token as sent."""
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()
