"""The Flask app factory: ``create_app(test_config=None)``.

Gunicorn runs it as ``gunicorn "palaute.app:create_app()"`` (see Procfile); ``palaute
serve`` does the same in-process. Nothing connects at import time: the database engine
is made here and connects on first use.

``test_config`` (a mapping) may hold:

- ``SETTINGS``: a ``palaute.config.Settings`` to use instead of reading the environment;
- any setting by its environment name (``DATABASE_URL``, ``FLOWS_DIR``...), overriding it;
- ``CLOCK``: a callable returning an aware UTC ``datetime`` (defaults to the real clock);
- ``WARM_UP``: build language detectors in a background thread (default: not when testing);
- any Flask config key (``TESTING``...).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Request, current_app, redirect, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.wrappers import Response

from palaute.config import Settings, require_production_ready
from palaute.services import build_services
from palaute.web import EXTENSION_KEY, dashboard, guards
from palaute.web.limits import init_limiter
from service.timesource import utcnow

log = logging.getLogger(__name__)


def load_settings(test_config: Mapping[str, Any] | None) -> Settings:
    config = dict(test_config or {})
    given = config.pop("SETTINGS", None)
    settings = given if isinstance(given, Settings) else Settings()
    overrides = {
        name: config[key]
        for key in config
        if (name := key.lower()) in Settings.model_fields and key.isupper()
    }
    if overrides:
        settings = settings.model_copy(update=overrides)
    return settings


class CookieOnDemandSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building the signer for a request that
    brings no session cookie (every webhook: ~0.1 ms each). A session written during
    such a request is still signed and sent as usual."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    settings = load_settings(test_config)
    logging.basicConfig(level=settings.log_level.upper())
    require_production_ready(settings)  # PALAUTE_ENV=production: no default secrets
    if settings.production and not settings.public_base_url:
        log.warning(
            "PUBLIC_BASE_URL is not set: Twilio signatures are checked against the URL as "
            "this server sees it (after TRUST_FORWARDED_HEADERS), and sent SMS carry no "
            "status callback. Set it to the public https:// address Twilio calls."
        )

    app = Flask(__name__)
    app.session_interface = CookieOnDemandSessions()
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        CLOCK=utcnow,
        SESSION_COOKIE_SAMESITE="Lax",  # HttpOnly is Flask's default
    )
    if test_config:
        app.config.update({k: v for k, v in test_config.items() if k != "SETTINGS"})
    app.config.setdefault("WARM_UP", not app.testing)

    if settings.trust_forwarded_headers:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # x_for: rate limits see the client's address, not the proxy's. Replacing wsgi_app
        # is how Flask documents wrapping it in middleware; mypy sees a method being assigned.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)  # type: ignore[method-assign]

    guards.install(app, settings)
    services = build_services(settings)
    app.extensions[EXTENSION_KEY] = services
    init_limiter(app, settings)
    register_blueprints(app)
    dashboard.init_app(app, settings)
    if settings.simulator_enabled:
        from palaute.web.simulator import enable

        enable(app, settings)
    app.add_url_rule("/", "index", _index)

    if app.config["WARM_UP"]:
        services.warm_up_in_background()
    return app


def _index() -> Response:
    """The front door: the staff pages (which ask for a sign-in), or the simulator where it
    is on and nobody is signed in yet (``make run``: trying flows needs no account)."""
    from flask_login import current_user

    if "simulator.page" in current_app.view_functions and not current_user.is_authenticated:
        return redirect(url_for("simulator.page"))
    return redirect(url_for("dashboard.index"))


def register_blueprints(app: Flask) -> None:
    """Every surface of the app (the simulator only when SIMULATOR_ENABLED, see
    ``palaute.web.simulator.enable``). Channel webhooks add their blueprint here, one line each."""
    from palaute.web.api import bp as api_bp
    from palaute.web.dashboard import bp as dashboard_bp
    from palaute.web.health import bp as health_bp
    from palaute.web.telegram_webhook import bp as telegram_bp
    from palaute.web.twilio_webhooks import bp as twilio_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(telegram_bp)
    app.register_blueprint(twilio_bp)
    app.register_blueprint(dashboard_bp)
