"""The landing page (the flows and service points the user may see) and a page per
service point (the flows that serve it and how citizens start them there)."""

from __future__ import annotations

from typing import Any

from flask import render_template

from palaute.web.dashboard import bp
from palaute.web.dashboard.access import allowed_points, allowed_points_of, require_point
from palaute.web.dashboard.access import visible_flows as flows_for_user


@bp.get("/")
def index() -> Any:
    flows = [(flow, allowed_points_of(flow)) for flow in flows_for_user()]
    return render_template("dashboard/index.html", flows=flows, points=allowed_points())


@bp.get("/points/<point>")
def point(point: str) -> Any:
    require_point(point)
    flows = [flow for flow in flows_for_user() if point in flow.service_points]
    codes = {
        flow.id: sorted(
            code
            for code, code_point in flow.triggers.codes.items()
            if code_point == point or (code_point is None and len(flow.service_points) == 1)
        )
        for flow in flows
    }
    return render_template("dashboard/point.html", point=point, flows=flows, codes=codes)
