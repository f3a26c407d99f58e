"""The signed-in user's own account: their language and their password."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, session, url_for
from flask_babel import gettext as _
from flask_login import login_user

from bot.texts import LANGUAGE_NAMES
from palaute.web import services
from palaute.web.dashboard import UI_KEY, UI_LANGUAGES, bp
from palaute.web.dashboard.access import SignedIn, allowed_points, remember_language, staff
from palaute.web.dashboard.forms import AccountLanguageForm, PasswordChangeForm, role_name
from service.accounts import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    AccountError,
    WeakPassword,
    WrongPassword,
)


def _language_form() -> AccountLanguageForm:
    form = AccountLanguageForm(prefix="ui")
    form.language.choices = [(code, LANGUAGE_NAMES[code]) for code in UI_LANGUAGES]
    return form


@bp.get("/account")
def account() -> Any:
    language = _language_form()
    language.language.data = staff().ui_language or session.get(UI_KEY)
    return _page(language, PasswordChangeForm(prefix="pw"))


def _page(language: AccountLanguageForm, password: PasswordChangeForm, status: int = 200) -> Any:
    me = staff()
    return (
        render_template(
            "dashboard/account.html",
            me=me,
            role=role_name(me.role),
            points=allowed_points(),
            language_form=language,
            password_form=password,
            min_length=PASSWORD_MIN_LENGTH,
        ),
        status,
    )


@bp.post("/account/language")
def account_language() -> Any:
    language = _language_form()
    if language.validate_on_submit():
        services().accounts.set_ui_language(staff().id, language.language.data)
        session[UI_KEY] = language.language.data
        remember_language(language.language.data)
        flash(_("The language is saved."), "success")
        return redirect(url_for("dashboard.account"))
    return _page(language, PasswordChangeForm(prefix="pw"), 400)


@bp.post("/account/password")
def account_password() -> Any:
    password = PasswordChangeForm(prefix="pw")
    if password.validate_on_submit():
        try:
            changed = services().accounts.change_own_password(
                staff().id, password.current.data, password.new.data
            )
        except WrongPassword:
            password.current.errors = [_("The current password is wrong.")]
        except WeakPassword as error:
            password.new.errors = [weak_password_message(error)]
        except AccountError as error:
            password.new.errors = [str(error)]
        else:
            # Other sessions of this user end; this one goes on under the new password.
            login_user(SignedIn(changed))
            flash(_("Your password is changed. Other sessions have been signed out."), "success")
            return redirect(url_for("dashboard.account"))
    language = _language_form()
    language.language.data = staff().ui_language
    return _page(language, password, 400)


def weak_password_message(error: WeakPassword) -> str:
    """The service's password rule, in the page's language."""
    if error.reason == "short":
        message = _(
            "The password is too short: use at least %(n)d characters.", n=PASSWORD_MIN_LENGTH
        )
    elif error.reason == "email":
        message = _("The password must not be the email address.")
    else:
        message = _("The password is too long: at most %(n)d characters.", n=PASSWORD_MAX_LENGTH)
    return str(message)
