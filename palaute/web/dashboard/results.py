"""The result pages: the overview (landing page), a flow's results with filters, and
its CSV and XLSX downloads. Thin: parse the filters, ask ``ResultsService``, render.

Every query is limited to the service points the user may see
(``access.allowed_points_of(flow)``); a point outside them is 403. Raw exports (one row
per response, with free text) are for the roles allowed raw data: admins and editors;
analysts get 403 and read the aggregated pages.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, abort, current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from bot.flow import Flow
from bot.periods import local_day
from palaute.web import now, services
from palaute.web.dashboard import bp
from palaute.web.dashboard.access import (
    allowed_points_of,
    require_flow,
    staff,
    visible_flows,
)
from palaute.web.dashboard.charts import line_chart
from service import exports
from service.accounts import Role
from service.reports import (
    BadFilter,
    GroupBy,
    NotAllowed,
    ResultsFilter,
    ResultsService,
    UnknownFlow,
)

RESULTS_KEY = "palaute_results"
RAW_DATA_ROLES = frozenset({Role.ADMIN, Role.EDITOR})
TREND_WEEKS = 12  # the overview's trend
NOW_DAYS = 28  # the overview's "now": the last four weeks
LATEST_COMMENTS = 3

MEASURE_NAMES = {
    "csat": _l("Satisfied (CSAT), %"),
    "fft": _l("Positive (Friends and Family Test), %"),
    "smiley": _l("Two happiest faces, %"),
    "nps": _l("Net Promoter Score"),
    "mean": _l("Mean"),
}


def results() -> ResultsService:
    """The app's results service (made on first use, one per app)."""
    found: ResultsService | None = current_app.extensions.get(RESULTS_KEY)
    if found is None:
        container = services()
        found = ResultsService(
            container.db, container.catalogue, timezone=container.settings.organisation_timezone
        )
        current_app.extensions[RESULTS_KEY] = found
    return found


def ui_language() -> str:
    from flask_babel import get_locale

    locale = get_locale()
    return str(locale.language) if locale is not None else "fi"


def today() -> date:
    return local_day(now(), ZoneInfo(services().settings.organisation_timezone))


def may_export() -> bool:
    """Raw exports (one row per response) are for admins and editors."""
    return staff().role in RAW_DATA_ROLES


# --- filters --------------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass
class Filters:
    """The filter form of the result pages (GET), as typed, with its problems."""

    point: str = ""
    channel: str = ""
    language: str = ""
    date_from: str = ""
    date_to: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    parsed_from: date | None = None
    parsed_to: date | None = None

    @classmethod
    def from_request(cls, flow: Flow) -> Filters:
        args = request.args
        found = cls(
            point=args.get("point", "").strip(),
            channel=args.get("channel", "").strip(),
            language=args.get("language", "").strip(),
            date_from=args.get("from", "").strip(),
            date_to=args.get("to", "").strip(),
        )
        if found.point and found.point not in flow.service_points:
            found.errors["point"] = _("Choose one of the service points in the list.")
        elif found.point and found.point not in allowed_points_of(flow):
            abort(403)
        if found.channel and not _NAME.match(found.channel):
            found.errors["channel"] = _("Choose one of the channels in the list.")
        if found.language and found.language not in flow.languages:
            found.errors["language"] = _("Choose one of the languages in the list.")
        found.parsed_from = found._date("from", found.date_from)
        found.parsed_to = found._date("to", found.date_to)
        if found.parsed_from and found.parsed_to and found.parsed_to < found.parsed_from:
            found.errors["to"] = _("The last day must be on or after the first day.")
        return found

    def _date(self, name: str, value: str) -> date | None:
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.errors[name] = _("Enter a date like 2026-03-31.")
            return None

    def results_filter(self, flow: Flow) -> ResultsFilter:
        return ResultsFilter(
            flow_id=flow.id,
            points_allowed=frozenset(allowed_points_of(flow)) if not staff().is_admin else None,
            point=self.point if "point" not in self.errors and self.point else None,
            channel=self.channel if "channel" not in self.errors and self.channel else None,
            language=self.language if "language" not in self.errors and self.language else None,
            date_from=self.parsed_from,
            date_to=self.parsed_to if "to" not in self.errors else None,
        )

    def query(self) -> dict[str, str]:
        """The filters as URL parameters (for links and export buttons)."""
        pairs = {
            "point": self.point,
            "channel": self.channel,
            "language": self.language,
            "from": self.date_from,
            "to": self.date_to,
        }
        return {key: value for key, value in pairs.items() if value}


def flow_filter(flow: Flow, **overrides: Any) -> ResultsFilter:
    """The user's whole view of ``flow`` (their points; admins: every response)."""
    allowed = None if staff().is_admin else frozenset(allowed_points_of(flow))
    return ResultsFilter(flow_id=flow.id, points_allowed=allowed, **overrides)


def _checked[T](action: Callable[[], T]) -> T:
    """Run a service call; a point outside the user's is 403, a bad filter 400."""
    try:
        return action()
    except NotAllowed:
        abort(403)
    except (BadFilter, UnknownFlow):
        abort(400)


# --- the overview ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowOverview:
    flow: Flow
    points: tuple[str, ...]
    main_title: str | None
    measure: str | None
    now: Any  # StepResult of the main step over the last four weeks, or None
    by_point: tuple[tuple[str, Any], ...]
    trend: Any  # service.reports.Trend, or None
    chart: Any
    comments: tuple[Any, ...]


@bp.get("/")
def index() -> Any:
    language = ui_language()
    end = today()
    recent = end - timedelta(days=NOW_DAYS - 1)
    trend_from = end - timedelta(weeks=TREND_WEEKS - 1)
    overviews = []
    points_seen: set[str] = set()
    for flow in visible_flows():
        points = allowed_points_of(flow)
        points_seen.update(points)
        service = results()
        summary = service.summary(
            flow_filter(flow, date_from=recent, date_to=end), language=language
        )
        main = summary.step(summary.main_step) if summary.main_step else None
        trend = chart = by_point = None
        comments: tuple[Any, ...] = ()
        if main is not None:
            trend = service.trend(flow_filter(flow, date_from=trend_from, date_to=end))
            # a trend with no period shown still has the step's scale (0-100 for shares)
            named = main.result.measure.value if main.result.measure else None
            chart = line_chart(trend.measure or named, trend.points)
            by_point = service.breakdown(
                flow_filter(flow, date_from=recent, date_to=end), GroupBy.POINT
            ).groups
        comments = service.comments(
            flow_filter(flow), limit=LATEST_COMMENTS, language=language
        ).comments
        overviews.append(
            FlowOverview(
                flow=flow,
                points=points,
                main_title=main.title if main else None,
                measure=(main.result.measure.value if main and main.result.measure else None),
                now=main.result if main else None,
                by_point=tuple(by_point or ()),
                trend=trend,
                chart=chart,
                comments=comments,
            )
        )
    return render_template(
        "dashboard/index.html",
        overviews=overviews,
        points=sorted(points_seen) if not staff().is_admin else _all_points(),
        recent_from=recent,
        today=end,
        measure_names=MEASURE_NAMES,
    )


def _all_points() -> list[str]:
    return sorted(services().accounts.all_points())


# --- a flow's results -----------------------------------------------------------------------


@bp.get("/flows/<flow_id>")
def flow(flow_id: str) -> Any:
    flow = require_flow(flow_id)
    filters = Filters.from_request(flow)
    language = ui_language()
    wanted = filters.results_filter(flow)
    service = results()
    summary = _checked(lambda: service.summary(wanted, language=language))
    channels = (
        [
            name
            for name, _result in _checked(
                lambda: service.breakdown(flow_filter(flow), GroupBy.CHANNEL)
            ).groups
        ]
        if summary.main_step
        else []
    )
    if filters.channel and filters.channel not in channels:
        channels.append(filters.channel)
    page = render_template(
        "dashboard/flow.html",
        flow=flow,
        summary=summary,
        filters=filters,
        points=allowed_points_of(flow),
        channels=sorted(channels),
        may_export=may_export(),
        export_query=filters.query(),
        measure_names=MEASURE_NAMES,
    )
    return page, 400 if filters.errors else 200


@bp.get("/flows/<flow_id>/export.csv")
def export_csv(flow_id: str) -> Any:
    flow, wanted, language = _export_request(flow_id)
    service = results()
    chunks = _checked(
        lambda: _first_then_rest(exports.iter_csv(service, wanted, language=language))
    )
    return Response(
        chunks,
        mimetype="text/csv",
        headers=_download_headers(flow, "csv"),
    )


@bp.get("/flows/<flow_id>/export.xlsx")
def export_xlsx(flow_id: str) -> Any:
    flow, wanted, language = _export_request(flow_id)
    service = results()
    handle, path = tempfile.mkstemp(prefix="palaute-export-", suffix=".xlsx")
    os.close(handle)
    try:
        _checked(lambda: exports.write_xlsx(service, wanted, path, language=language))
    except BaseException:
        os.unlink(path)
        raise
    return Response(
        _file_chunks(path),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=_download_headers(flow, "xlsx"),
    )


def _export_request(flow_id: str) -> tuple[Flow, ResultsFilter, str]:
    flow = require_flow(flow_id)
    if not may_export():
        message = _(
            "Raw exports (one row per response, with what people wrote) are for "
            "administrators and editors. Ask an administrator if you need one."
        )
        page = render_template(
            "dashboard/error.html", title=_("Not yours to download"), message=message
        )
        abort(Response(page, status=403))
    filters = Filters.from_request(flow)
    if filters.errors:
        abort(400)
    return flow, filters.results_filter(flow), ui_language()


def _first_then_rest(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Take the first chunk now (so a bad filter is an error page, not a broken download)."""
    first = next(chunks)

    def rest() -> Iterator[bytes]:
        yield first
        yield from chunks

    return rest()


def _file_chunks(path: str, size: int = 64 * 1024) -> Iterator[bytes]:
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(size):
                yield chunk
    finally:
        os.unlink(path)


def _download_headers(flow: Flow, extension: str) -> dict[str, str]:
    name = f"{flow.id}-{today().isoformat()}.{extension}"
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
