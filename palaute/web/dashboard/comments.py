"""What citizens wrote: a flow's free-text answers with the score given in the same run
(search, score, language, dates, point; newest first, a page at a time with the
service's cursor), and one response's answers in full.

A response of a service point the user may not see is "not found" (404), the same as
one that does not exist: its id tells nothing.
"""

from __future__ import annotations

from typing import Any

from flask import abort, render_template, request
from flask_babel import gettext as _

from bot.measures import answer_label, defined_values, main_step
from palaute.web.dashboard import bp
from palaute.web.dashboard.access import allowed_points_of, require_flow
from palaute.web.dashboard.results import Filters, _checked, flow_filter, results, ui_language

PAGE_SIZE = 20


@bp.get("/flows/<flow_id>/comments")
def comments(flow_id: str) -> Any:
    flow = require_flow(flow_id)
    filters = Filters.from_request(flow)
    language = ui_language()
    search = request.args.get("q", "").strip()[:200]
    main = main_step(flow)
    score_choices = (
        [(str(v), answer_label(flow, main, v, language)) for v in defined_values(main)]
        if main is not None
        else []
    )
    score = request.args.get("score", "").strip()
    if score and score not in {value for value, _label in score_choices}:
        filters.errors["score"] = _("Choose one of the scores in the list.")
        score = ""
    cursor = request.args.get("cursor") or None
    service = results()
    page = _checked(
        lambda: service.comments(
            filters.results_filter(flow),
            search=search or None,
            scores=[score] if score else None,
            cursor=cursor,
            limit=PAGE_SIZE,
            language=language,
        )
    )
    query = filters.query()
    if search:
        query["q"] = search
    if score:
        query["score"] = score
    html = render_template(
        "dashboard/comments.html",
        flow=flow,
        page=page,
        filters=filters,
        search=search,
        score=score,
        score_choices=score_choices,
        main=main,
        points=allowed_points_of(flow),
        query=query,
        first_page=cursor is None,
    )
    return html, 400 if filters.errors else 200


@bp.get("/flows/<flow_id>/responses/<int:run_id>")
def response(flow_id: str, run_id: int) -> Any:
    flow = require_flow(flow_id)
    language = ui_language()
    found = _checked(lambda: results().response(flow_filter(flow), run_id, language=language))
    if found is None:
        abort(404)
    steps = {step.id: step for step in flow.steps}
    return render_template(
        "dashboard/response.html",
        flow=flow,
        row=found,
        steps=steps,
        back=request.args.get("back", ""),
    )
