"""Who is signed in, and what they may see: the checks every staff page makes.

Pages never decide access themselves: they ask here. A service point or flow that does
not exist is 404; one that exists but is not the user's is 403, so staff see why
("not yours: ask an administrator") while nothing of another unit is shown.

    point = access.require_point(point)           # 404 unknown, 403 not granted
    flow = access.require_flow(flow_id)           # 404 unknown, 403 none of its points
    points = access.allowed_points_of(flow)       # the flow's points this user may see
    access.allowed_points()                       # every point this user may see

Results queries must filter by ``allowed_points_of(flow)`` (or ``allowed_points()``):
an editor or analyst sees only their points' rows even on a flow they may open.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import abort, g
from flask_login import UserMixin, current_user

from bot.flow import Flow
from palaute.web import services
from service.accounts import StaffUser

P = ParamSpec("P")
R = TypeVar("R")


# Flask-Login has no type information, so UserMixin is Any to mypy.
class SignedIn(UserMixin):  # type: ignore[misc]
    """Flask-Login's user: the staff account, and the session's epoch in its id."""

    def __init__(self, staff: StaffUser) -> None:
        self.staff = staff

    def get_id(self) -> str:
        return f"{self.staff.id}:{self.staff.auth_epoch}"


def signed_in_staff() -> StaffUser | None:
    """The signed-in staff member of this request, or None."""
    if not current_user.is_authenticated:
        return None
    user: SignedIn = current_user
    return user.staff


def remember_language(language: str) -> None:
    """This request (and its messages) go on in ``language``, as just saved."""
    from dataclasses import replace

    from flask_babel import refresh

    if current_user.is_authenticated:
        user: SignedIn = current_user
        user.staff = replace(user.staff, ui_language=language)
    refresh()


def staff() -> StaffUser:
    """The signed-in staff member (the blueprint lets no one else reach a page)."""
    found = signed_in_staff()
    if found is None:
        abort(401)
    return found


def allowed_points() -> tuple[str, ...]:
    """Every service point the signed-in user may see, sorted."""
    cached: tuple[str, ...] | None = g.get("staff_points")
    if cached is None:
        cached = services().accounts.visible_points(staff())
        g.staff_points = cached
    return cached


def visible_flows() -> tuple[Flow, ...]:
    """Flows with at least one service point the user may see (admins: every flow)."""
    return services().accounts.visible_flows(staff())


def allowed_points_of(flow: Flow) -> tuple[str, ...]:
    """The service points of ``flow`` the user may see."""
    allowed = set(allowed_points())
    return tuple(p for p in flow.service_points if p in allowed)


def require_point(point: str) -> str:
    """``point`` if the user may see it; 404 if no flow names it, 403 if not theirs."""
    if point not in services().accounts.all_points():
        abort(404)
    if point not in allowed_points():
        abort(403)
    return point


def require_flow(flow_id: str) -> Flow:
    """The flow if the user may see it; 404 if there is none, 403 if not theirs."""
    flow = services().catalogue.get(flow_id)
    if flow is None:
        abort(404)
    if not services().accounts.may_see_flow(staff(), flow.id):
        abort(403)
    return flow


def admin_required[**P, R](view: Callable[P, R]) -> Callable[P, R]:
    """Only admins reach this view (others get 403)."""

    @wraps(view)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        if not staff().is_admin:
            abort(403)
        return view(*args, **kwargs)

    return checked
