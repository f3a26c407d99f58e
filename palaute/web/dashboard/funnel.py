"""The follow-up funnel (what ``palaute visits report`` prints) as a page: per flow,
visits -> surveys sent -> delivered -> started -> completed, counting only visits at
the service points the user may see."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import render_template, request
from flask_babel import gettext as _

from palaute.web import services
from palaute.web.dashboard import bp
from palaute.web.dashboard.access import allowed_points, staff
from palaute.web.dashboard.results import results


@bp.get("/follow-ups")
def funnel() -> Any:
    since_text = request.args.get("from", "").strip()
    error = None
    since = None
    if since_text:
        try:
            since = date.fromisoformat(since_text)
        except ValueError:
            error = _("Enter a date like 2026-03-31.")
    points = None if staff().is_admin else frozenset(allowed_points())
    rows = results().funnel(
        services().settings.organisation_name, points_allowed=points, since=since
    )
    catalogue = services().catalogue
    flows = {row.flow_id: catalogue.get(row.flow_id) for row in rows}
    html = render_template(
        "dashboard/funnel.html", rows=rows, flows=flows, since=since_text, error=error
    )
    return html, 400 if error else 200
