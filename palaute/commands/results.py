"""``palaute results summary FLOW`` and ``palaute results export FLOW``: the results of
a flow for scripts and for checking numbers (docs/results.md).

    palaute results summary library-visit --point kaarina-main-library --from 2026-01-01
    palaute results summary library-visit --json
    palaute results export library-visit --format xlsx --out kirjasto.xlsx --language fi

Both read through ``service.reports.ResultsService`` (the same numbers as the dashboard,
with the same small-number suppression) and leave test data (simulator, ``palaute
chat``) out unless ``--include-test`` is given. Dates are local days in
ORGANISATION_TIMEZONE.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click

from service.reports import ResultsFilter, ResultsService


def _date(_ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date: write YYYY-MM-DD") from None


def _filters(command: Callable[..., None]) -> Callable[..., None]:
    """The filter options both commands take, handed to COMMAND as one ``ResultsFilter``
    (with the FLOW_ID argument) in ``filters``."""

    @functools.wraps(command)
    def with_filters(
        *,
        flow_id: str,
        point: str | None,
        channel: str | None,
        language: str | None,
        date_from: date | None,
        date_to: date | None,
        include_test: bool,
        **rest: Any,
    ) -> None:
        filters = ResultsFilter(
            flow_id=flow_id,
            point=point,
            channel=channel,
            language=language,
            date_from=date_from,
            date_to=date_to,
            include_test=include_test,
        )
        command(filters=filters, **rest)

    options = [
        click.option("--point", default=None, help="One service point."),
        click.option("--channel", default=None, help="sms, telegram, simulator ..."),
        click.option("--language", default=None, help="Answers in this language (fi, sv ...)."),
        click.option("--from", "date_from", callback=_date, help="First local day, YYYY-MM-DD."),
        click.option("--to", "date_to", callback=_date, help="Last local day, YYYY-MM-DD."),
        click.option(
            "--include-test",
            is_flag=True,
            help="Include test data (simulator and `palaute chat` conversations).",
        ),
    ]
    decorated: Callable[..., None] = with_filters
    for option in reversed(options):
        decorated = option(decorated)
    return decorated


def _service() -> ResultsService:
    from bot.catalogue import Catalogue
    from palaute.config import Settings
    from palaute.services import build_engine

    settings = Settings()
    try:
        catalogue = Catalogue.load(settings.flows_dir)
    except Exception as error:  # bad flows: say which, not a traceback
        raise click.ClickException(str(error)) from error
    return ResultsService(
        build_engine(settings),
        catalogue,
        timezone=settings.organisation_timezone,
    )


def _run[T](action: Callable[[ResultsService], T]) -> T:
    from service.errors import StorageError
    from service.reports import BadFilter, NotAllowed, UnknownFlow

    service = _service()
    try:
        return action(service)
    except (UnknownFlow, BadFilter, NotAllowed) as error:
        raise click.ClickException(str(error.args[0] if error.args else error)) from error
    except StorageError as error:
        raise click.ClickException(f"could not read the results: {error}") from error
    finally:
        service.engine.dispose()


@click.group()
def results() -> None:
    """Results of a flow: measures per step, and exports for Excel."""


@results.command("summary")
@click.argument("flow_id")
@_filters
@click.option("--json", "as_json", is_flag=True, help="One JSON object (see docs/results.md).")
@click.option("--ui", "ui_language", default="en", help="Language of labels (fi, sv, en).")
def summary(filters: ResultsFilter, as_json: bool, ui_language: str) -> None:
    """The measures of flow FLOW_ID, per step (cells of 1-4 shown as "<5")."""
    from service.exports import summary_json

    found = _run(lambda service: service.summary(filters, language=ui_language))
    data = summary_json(found)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    _print_summary(data)


def _count(figure: dict[str, Any]) -> str:
    return "<5" if figure.get("suppressed") else str(figure["count"])


def _share(item: dict[str, Any]) -> str:
    if item.get("suppressed"):
        return "<5 (suppressed)"
    return (
        f"{item['percent']:.1f} % (95% CI {item['low']:.1f}-{item['high']:.1f}, n={item['base']})"
    )


def _print_summary(data: dict[str, Any]) -> None:
    runs = data["runs"]
    click.echo(f"{data['title']} ({data['flow']})")
    click.echo(f"runs started {_count(runs['started'])}, completed {_count(runs['completed'])}")
    for step in data["steps"]:
        click.echo("")
        click.echo(f"{step['id']} ({step['kind']}): {step['question']}")
        click.echo(f"  responses {_count(step['responses'])}, answered {_count(step['answered'])}")
        names = {"positive": step["measure"] or "positive", "negative": "negative"}
        for key in ("positive", "negative"):
            if key in step:
                click.echo(f"  {names[key]}: {_share(step[key])}")
        if "nps" in step:
            nps = step["nps"]
            shown = (
                "suppressed"
                if nps.get("suppressed")
                else f"{nps['score']:.1f} (95% CI {nps['low']:.1f}-{nps['high']:.1f})"
            )
            click.echo(f"  nps: {shown}")
        if "mean" in step:
            mean = step["mean"]
            if mean.get("suppressed"):
                click.echo("  mean: suppressed")
            elif mean["low"] is not None:
                click.echo(
                    f"  mean: {mean['mean']:.2f} (95% CI {mean['low']:.2f}-{mean['high']:.2f})"
                )
        if step["kind"] == "text":
            continue
        for cell in step["distribution"]:
            label = cell["label"] or cell["kind"]
            count = "<5" if cell.get("suppressed") else str(cell["count"])
            share = f"  {cell['percent']:.1f} %" if "percent" in cell else ""
            click.echo(f"    {label:<30} {count:>7}{share}")


@results.command("export")
@click.argument("flow_id")
@click.option(
    "--format", "file_format", type=click.Choice(["csv", "xlsx"]), required=True, help="File type."
)
@click.option(
    "--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="File."
)
@_filters
@click.option("--ui", "ui_language", default="fi", help="Language of labels (fi, sv, en).")
def export(filters: ResultsFilter, file_format: str, out: Path, ui_language: str) -> None:
    """One row per response of FLOW_ID, one column per step, to a CSV or XLSX file."""
    from service.exports import write_csv, write_xlsx

    partial = out.with_name(out.name + ".partial")

    def write(service: ResultsService) -> int:
        service.flow(filters.flow_id)  # an unknown flow fails before a file is made
        if file_format == "csv":
            with partial.open("wb") as stream:
                return write_csv(service, filters, stream, language=ui_language)
        return write_xlsx(service, filters, partial, language=ui_language)

    try:
        count = _run(write)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)  # a file that is there is complete
    click.echo(f"{count} responses written to {out}")
