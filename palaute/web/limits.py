"""The app's one rate limiter (Flask-Limiter), made by the app factory.

Surfaces declare their limits on their view functions after the blueprints are
registered (``limit_view``), so there is no limiter made at import time and every app
(tests make many) counts on its own. Counters live in ``RATE_LIMIT_STORAGE_URI``:
``memory://`` counts per process (each gunicorn worker on its own; the sign-in lockout
in the database is what holds across workers), a shared store such as
``redis://host:6379`` counts across them.

Clients are told apart by ``request.remote_addr``; behind a reverse proxy set
``TRUST_FORWARDED_HEADERS=true`` so that it is the client's address (X-Forwarded-For).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

from flask import Flask
from flask.typing import RouteCallable
from flask_limiter import Limiter, RouteLimit
from flask_limiter.util import get_remote_address

from palaute.config import Settings

EXTENSION_KEY = "palaute_limiter"


def init_limiter(app: Flask, settings: Settings) -> Limiter:
    """The app's limiter, with no limit anywhere until a surface asks for one."""
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=settings.rate_limit_storage_uri,
        strategy="moving-window",
        default_limits=[],
        headers_enabled=True,  # Retry-After on 429
    )
    app.extensions[EXTENSION_KEY] = limiter
    return limiter


def limiter_of(app: Flask) -> Limiter:
    """The app's limiter (made by ``init_limiter``)."""
    limiter: Limiter = app.extensions[EXTENSION_KEY]
    return limiter


def limit_view(
    app: Flask,
    endpoint: str,
    limits: str,
    *,
    key_func: Callable[[], str] = get_remote_address,
    methods: Sequence[str] | None = None,
    scope: str | None = None,
) -> None:
    """Apply ``limits`` (e.g. "10 per minute;50 per hour") to a registered endpoint.

    ``scope`` names a counter shared by every request with the same key (give each
    limit of one endpoint its own scope so that they count apart).
    """
    limiter = limiter_of(app)
    # Flask-Limiter checks a view's own limits when its wrapper runs: the registered view
    # is replaced by the wrapped one (same name; stacked limits are checked together).
    decorate_view(
        app,
        endpoint,
        limiter.limit(
            limits, key_func=key_func, methods=list(methods) if methods else None, scope=scope
        ),
    )


def decorate_view(app: Flask, endpoint: str, decorator: RouteLimit) -> None:
    """Replace a registered view by ``decorator(view)`` under the same endpoint name."""
    # The limit keeps the view's signature (Callable[P, R] -> Callable[P, R]), but mypy
    # cannot carry that through RouteCallable's union of sync and async views.
    app.view_functions[endpoint] = cast(RouteCallable, decorator(app.view_functions[endpoint]))
