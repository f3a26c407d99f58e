"""Admin-only: the users, adding one, and a user's page (service points, disable or
enable, a new password). A password made here is shown once, on the page that answers
the form, and never stored but as its hash."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_user

from palaute.web import now, services
from palaute.web.dashboard import bp
from palaute.web.dashboard.access import SignedIn, admin_required, staff
from palaute.web.dashboard.forms import (
    AddUserForm,
    ButtonForm,
    PointsForm,
    role_choices,
    role_name,
)
from service.accounts import (
    AccountError,
    BadEmail,
    EmailInUse,
    Role,
    StaffUser,
    UnknownPoint,
    parse_role,
)


def _point_choices() -> list[tuple[str, str]]:
    return [(p, p) for p in services().accounts.all_points()]


@bp.get("/users")
@admin_required
def users() -> Any:
    return render_template(
        "dashboard/users.html", users=services().accounts.all_users(), role_name=role_name,
        now=now(),
    )  # fmt: skip


@bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def add_user() -> Any:
    form = AddUserForm()
    form.role.choices = role_choices()
    form.points.choices = _point_choices()
    if form.validate_on_submit():
        try:
            user, password = services().accounts.add(
                form.email.data, parse_role(form.role.data), points=form.points.data or [],
                password=None, now=now(),
            )  # fmt: skip
        except BadEmail:
            form.email.errors = [_("Enter an email address like name@example.fi.")]
        except EmailInUse:
            form.email.errors = [_("A user with this email address exists already.")]
        except UnknownPoint:
            form.points.errors = [_("Choose service points from the list.")]
        except AccountError:
            form.points.errors = [_("Administrators see every service point: choose none.")]
        else:
            return render_template(
                "dashboard/user_password.html", user=user, password=password, added=True
            )
    return render_template("dashboard/user_new.html", form=form), 400 if form.errors else 200


def _user_or_404(user_id: int) -> StaffUser:
    user = services().accounts.get(user_id)
    if user is None:
        abort(404)
    return user


def _user_page(user: StaffUser, points: PointsForm | None = None, status: int = 200) -> Any:
    if points is None:
        points = PointsForm(prefix="points")
        points.points.choices = _point_choices()
        points.points.data = sorted(user.points)
    return (
        render_template(
            "dashboard/user.html",
            user=user,
            role_name=role_name,
            points_form=points,
            button=ButtonForm(),
            is_self=user.id == staff().id,
            now=now(),
        ),
        status,
    )


@bp.get("/users/<int:user_id>")
@admin_required
def user(user_id: int) -> Any:
    return _user_page(_user_or_404(user_id))


@bp.post("/users/<int:user_id>/points")
@admin_required
def user_points(user_id: int) -> Any:
    user = _user_or_404(user_id)
    form = PointsForm(prefix="points")
    form.points.choices = _point_choices()
    if form.validate_on_submit():
        if user.role is Role.ADMIN:
            form.points.errors = [_("Administrators see every service point: choose none.")]
        else:
            services().accounts.set_points(user.id, form.points.data or [])
            flash(_("The service points are saved."), "success")
            return redirect(url_for("dashboard.user", user_id=user.id))
    return _user_page(user, form, 400)


@bp.post("/users/<int:user_id>/disable")
@admin_required
def disable_user(user_id: int) -> Any:
    return _set_disabled(user_id, True)


@bp.post("/users/<int:user_id>/enable")
@admin_required
def enable_user(user_id: int) -> Any:
    return _set_disabled(user_id, False)


def _set_disabled(user_id: int, disabled: bool) -> Any:
    user = _user_or_404(user_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    if disabled and user.id == staff().id:
        flash(_("You cannot disable your own account."), "error")
        return redirect(url_for("dashboard.user", user_id=user.id))
    services().accounts.set_disabled(user.id, disabled, now())
    flash(
        _("The account is disabled and its sessions ended.")
        if disabled
        else _("The account is enabled again."),
        "success",
    )
    return redirect(url_for("dashboard.user", user_id=user.id))


@bp.post("/users/<int:user_id>/password")
@admin_required
def reset_password(user_id: int) -> Any:
    user = _user_or_404(user_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    changed, password = services().accounts.set_password(user.id, None)
    if changed.id == staff().id:  # this session goes on under the new password
        login_user(SignedIn(changed))
    return render_template(
        "dashboard/user_password.html", user=changed, password=password, added=False
    )
