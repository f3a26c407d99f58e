"""Signing in and out, the language switch, and the staff pages' error pages.

A failed sign-in says only "wrong email or password" (whether the email exists is not
told); a locked account says until when; a disabled one says so only after the right
password. The sign-in POST is rate-limited per address and per account
(``dashboard.init_app``) on top of the lockout kept in the database.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_time
from flask_babel import gettext as _
from flask_login import login_user, logout_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from palaute.web import now, services
from palaute.web.dashboard import SEEN_KEY, UI_KEY, bp, shell
from palaute.web.dashboard.access import SignedIn, remember_language, signed_in_staff
from palaute.web.dashboard.forms import ButtonForm, LanguageForm, SignInForm
from service.accounts import BadEmail, SignInOutcome, normalise_email


def load_user(user_id: str) -> SignedIn | None:
    """Flask-Login's loader: the session's user, if still enabled and on the same password."""
    identity, _sep, epoch = user_id.partition(":")
    if not identity.isdigit() or not epoch.isdigit():
        return None
    staff = services().accounts.session_user(int(identity), int(epoch))
    return SignedIn(staff) if staff is not None else None


def account_key() -> str:
    """The rate-limit key of a sign-in attempt: the account it names."""
    typed = request.form.get("email", "")
    try:
        return "account:" + normalise_email(typed)
    except BadEmail:
        return "account:" + typed.strip().lower()[:254]


def safe_next(target: str | None) -> str:
    """Where to go after signing in or switching language: a staff page, nothing else."""
    if target:
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and target.startswith("/dashboard")
            and "\\" not in target
        ):
            return target
    return url_for("dashboard.index")


def end_session() -> None:
    """Sign out and forget everything but the chosen language."""
    language = session.get(UI_KEY)
    logout_user()
    session.clear()
    if language:
        session[UI_KEY] = language


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    if signed_in_staff() is not None:
        return redirect(safe_next(request.args.get("next")))
    form = SignInForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    error = None
    if form.validate_on_submit():
        result = services().accounts.authenticate(form.email.data, form.password.data, now())
        if result.outcome is SignInOutcome.OK and result.user is not None:
            language = session.get(UI_KEY)
            session.clear()  # a fresh session: nothing from before signing in carries over
            login_user(SignedIn(result.user))
            session.permanent = True
            session[SEEN_KEY] = now().timestamp()
            if result.user.ui_language is None and language:
                services().accounts.set_ui_language(result.user.id, str(language))
            return redirect(safe_next(form.next.data))
        if result.outcome is SignInOutcome.LOCKED and result.locked_until is not None:
            error = _(
                "Too many failed sign-ins: this account is locked until %(time)s. "
                "Try again then, or ask an administrator for a new password.",
                time=format_time(result.locked_until, "short"),
            )
        elif result.outcome is SignInOutcome.DISABLED:
            error = _("This account has been disabled. Ask an administrator.")
        else:
            error = _("The email address or the password is wrong.")
        form.password.errors = [error]
    return render_template("dashboard/sign_in.html", form=form, failure=error)


@bp.route("/sign-out", methods=["GET", "POST"])
def sign_out() -> Any:
    """GET asks to confirm (a link cannot sign anyone out); POST signs out."""
    form = ButtonForm()
    if request.method == "POST" and form.validate_on_submit():
        end_session()
        flash(_("You have signed out."), "info")
        return redirect(url_for("dashboard.sign_in"))
    return render_template("dashboard/sign_out.html", form=form)


@bp.post("/language")
def language() -> ResponseReturnValue:
    """The header's language switch: kept on the account, or on this browser before sign-in."""
    form = LanguageForm()
    if form.validate_on_submit():
        chosen = str(form.lang.data)
        session[UI_KEY] = chosen
        staff = signed_in_staff()
        if staff is not None:
            services().accounts.set_ui_language(staff.id, chosen)
        remember_language(chosen)
    return redirect(safe_next(form.next.data))


def error_page(error: HTTPException) -> Any:
    """The staff pages' own error pages; every other surface keeps its plain errors."""
    if not request.path.startswith("/dashboard"):
        return error
    code = error.code or 500
    if code == 429 and request.endpoint == "dashboard.sign_in":
        form = SignInForm()
        message = _("Too many sign-in attempts. Wait a minute and try again.")
        form.password.errors = [message]
        page = render_template("dashboard/sign_in.html", form=form, failure=message, **shell())
        return page, 429
    messages = {
        400: _("The form had expired or was sent twice. Go back, reload the page and try again."),
        403: _(
            "This page belongs to a service point that is not yours. "
            "Ask an administrator if you need to see it."
        ),
        404: _("There is no such page."),
        405: _("There is no such page."),
        429: _("Too many requests. Wait a minute and try again."),
    }
    if isinstance(error, CSRFError):
        code = 400
    titles = {
        400: _("The form could not be sent"),
        403: _("Not yours to see"),
        429: _("Too many requests"),
    }
    return (
        render_template(
            "dashboard/error.html",
            title=titles.get(code, _("Page not found")),
            message=messages.get(code, messages[404]),
            **shell(),
        ),
        code,
    )
