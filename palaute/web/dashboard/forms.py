"""The staff pages' forms (Flask-WTF: each carries a CSRF token).

Labels are lazy translations, so one form class serves every language. Rules that need
the database (the password policy, unknown points) are the service layer's; its errors
are shown on the field they concern.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import AnyOf, DataRequired, EqualTo, InputRequired
from wtforms.widgets import CheckboxInput, ListWidget

from service.accounts import UI_LANGUAGES, Role


class CheckboxesField(SelectMultipleField):  # type: ignore[misc]
    """Several choices as checkboxes (rendered by the ``checkboxes`` macro)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def role_choices() -> list[tuple[str, Any]]:
    return [
        (Role.ADMIN.value, _l("Administrator: everything, and the users")),
        (Role.EDITOR.value, _l("Editor: flows and results of their service points")),
        (Role.ANALYST.value, _l("Analyst: results and comments of their service points")),
    ]


def role_name(role: Role) -> Any:
    return {
        Role.ADMIN: _l("Administrator"),
        Role.EDITOR: _l("Editor"),
        Role.ANALYST: _l("Analyst"),
    }[role]


class SignInForm(FlaskForm):  # type: ignore[misc]
    email = EmailField(
        _l("Email address"), validators=[DataRequired(_l("Enter your email address."))]
    )
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter your password."))])
    next = HiddenField()


class LanguageForm(FlaskForm):  # type: ignore[misc]
    """The language switch in the header: one button per language."""

    lang = StringField(validators=[AnyOf(UI_LANGUAGES)])
    next = HiddenField()


class ButtonForm(FlaskForm):  # type: ignore[misc]
    """A form that is only a button (sign out, disable...): the CSRF token is all."""


class AccountLanguageForm(FlaskForm):  # type: ignore[misc]
    language = SelectField(_l("Language of these pages"), choices=[])


class PasswordChangeForm(FlaskForm):  # type: ignore[misc]
    current = PasswordField(
        _l("Current password"), validators=[DataRequired(_l("Enter your current password."))]
    )
    new = PasswordField(_l("New password"), validators=[DataRequired(_l("Enter a new password."))])
    confirm = PasswordField(
        _l("New password again"),
        validators=[
            DataRequired(_l("Enter the new password again.")),
            EqualTo("new", _l("The two new passwords are not the same.")),
        ],
    )


class AddUserForm(FlaskForm):  # type: ignore[misc]
    email = EmailField(
        _l("Email address"), validators=[DataRequired(_l("Enter an email address."))]
    )
    role = RadioField(_l("Role"), choices=[], validators=[InputRequired(_l("Choose a role."))])
    points = CheckboxesField(_l("Service points"), choices=[])


class PointsForm(FlaskForm):  # type: ignore[misc]
    points = CheckboxesField(_l("Service points"), choices=[])
