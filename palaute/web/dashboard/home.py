"""A page per service point: the flows that serve it and how citizens start them there.
(The landing page, the overview of results, is in ``results``.)"""

from __future__ import annotations

from typing import Any

from flask import render_template

from palaute.web.dashboard import bp
from palaute.web.dashboard.access import require_point
from palaute.web.dashboard.access import visible_flows as flows_for_user


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
