"""The staff pages under ``/dashboard``: sign-in, the shell (header, navigation, language
switch) and the pages built on it.

Every page here is for signed-in staff unless its endpoint is in ``PUBLIC``; every form
POST is checked for its CSRF token; a session ends after ``SESSION_IDLE_MINUTES``
without a request. All three are enforced once, in ``_guard``, for every view of the
blueprint, so a new page cannot forget them.

To add a page:

1. a module in this package with its views on ``bp`` (``@bp.get("/flows/<flow_id>")``),
   imported at the bottom of this file;
2. in the view, ask ``access`` what the user may see: ``access.require_flow(flow_id)``,
   ``access.require_point(point)``, ``access.allowed_points()``,
   ``access.allowed_points_of(flow)``; admin-only pages take ``@access.admin_required``;
3. a template ``templates/dashboard/<page>.html`` that extends ``dashboard/base.html``
   and fills ``title`` and ``main``; every text in ``_()``; then ``make translations``
   and translate the new entries in ``palaute/translations/{fi,sv}``;
4. a navigation entry in ``NAV`` if it is a top-level page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    redirect,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import Babel, LazyString
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from bot.texts import LANGUAGE_NAMES
from palaute.config import Settings
from palaute.web import now, services

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

UI_LANGUAGES = ("fi", "sv", "en")
DEFAULT_UI = "fi"

# Endpoints open without signing in. Everything else needs a signed-in user.
PUBLIC = frozenset({"dashboard.sign_in", "dashboard.language"})
SEEN_KEY = "staff_seen"  # session: when this session last made a request (epoch seconds)
UI_KEY = "ui_language"  # session: the language chosen before signing in


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: LazyString
    admin_only: bool = False


# Top-level pages, in the order of the navigation bar.
NAV: list[NavItem] = [
    NavItem("dashboard.index", _l("Overview")),
    NavItem("dashboard.funnel", _l("Follow-ups")),
    NavItem("dashboard.users", _l("Users"), admin_only=True),
    NavItem("dashboard.account", _l("Your account")),
]

csrf = CSRFProtect()


def select_locale() -> str:
    """The signed-in user's language, else the one chosen on this browser, else the
    browser's Accept-Language, else Finnish."""
    from palaute.web.dashboard.access import signed_in_staff

    staff = signed_in_staff()
    if staff is not None and staff.ui_language in UI_LANGUAGES:
        return staff.ui_language
    chosen = session.get(UI_KEY)
    if chosen in UI_LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(UI_LANGUAGES) or DEFAULT_UI


def init_app(app: Flask, settings: Settings) -> None:
    """Sessions, sign-in, CSRF, translations and rate limits for the staff pages."""
    from palaute.web.limits import limit_view

    app.config.update(
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_idle_minutes),
        # Forms are checked by the blueprint (``_guard``), not app-wide: webhooks and the
        # simulator's JSON API are not forms and carry no token.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the (idle-limited) session
        BABEL_DEFAULT_LOCALE=DEFAULT_UI,
        BABEL_DEFAULT_TIMEZONE=settings.organisation_timezone,
    )
    app.jinja_env.add_extension("jinja2.ext.do")
    csrf.init_app(app)
    Babel(app, locale_selector=select_locale)

    login = LoginManager(app)
    login.login_view = "dashboard.sign_in"
    login.login_message = _l("Sign in to see this page.")
    login.login_message_category = "info"
    login.user_loader(auth.load_user)

    limit_view(
        app,
        "dashboard.sign_in",
        settings.login_rate_limit_address,
        methods=["POST"],
    )
    limit_view(
        app,
        "dashboard.sign_in",
        settings.login_rate_limit_account,
        key_func=auth.account_key,
        methods=["POST"],
    )


@bp.before_request
def _guard() -> ResponseReturnValue | None:
    """CSRF on every unsafe method, the idle timeout, and sign-in for non-public pages."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    if current_user.is_authenticated:
        moment = now().timestamp()
        seen = session.get(SEEN_KEY)
        idle = services().settings.session_idle_minutes * 60
        if isinstance(seen, int | float) and moment - seen > idle:
            from palaute.web.dashboard.auth import end_session

            end_session()
            flash(_l("You were signed out after a while without activity."), "info")
            return redirect(url_for("dashboard.sign_in", next=_here()))
        session[SEEN_KEY] = moment
        session.permanent = True
        return None
    if request.endpoint in PUBLIC:
        return None
    manager = current_app.login_manager  # type: ignore[attr-defined]
    response: ResponseReturnValue = manager.unauthorized()
    return response


def _here() -> str:
    """This page's path and query (where to come back to), or the overview after a POST."""
    if request.method != "GET":
        return url_for("dashboard.index")
    return request.full_path.rstrip("?")


@bp.context_processor
def shell() -> dict[str, Any]:
    """What dashboard/base.html needs on every page (error pages call it themselves)."""
    from flask_babel import get_locale

    from palaute.web.dashboard.access import signed_in_staff

    staff = signed_in_staff()
    locale = get_locale()
    return {
        "organisation": services().settings.organisation_name,
        "staff": staff,
        "nav": [
            item for item in NAV if staff is not None and (staff.is_admin or not item.admin_only)
        ],
        "ui_language": str(locale.language) if locale is not None else DEFAULT_UI,
        "ui_languages": [(code, LANGUAGE_NAMES[code]) for code in UI_LANGUAGES],
        "language_names": LANGUAGE_NAMES,
        "here": _here(),
    }


# The staff pages' own error pages, for errors of requests routed to this blueprint
# (a URL under /dashboard that matches no page keeps Flask's plain 404).
def _register_error_pages() -> None:
    from palaute.web.dashboard.auth import error_page

    for code in (400, 403, 404, 429):
        bp.register_error_handler(code, error_page)


# The pages (imported for their routes on ``bp``).
from palaute.web.dashboard import (  # noqa: E402, F401
    account,
    auth,
    comments,
    funnel,
    home,
    results,
    users,
)

_register_error_pages()
