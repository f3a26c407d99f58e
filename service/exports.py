"""Exports of a flow's responses for Excel: CSV and XLSX, written as they stream.

One row per response (run), metadata first (service point, channel, language, status,
started, completed, in the organisation's local time), then for each step the readable
answer in the chosen language and, for steps with fixed answers, the stored value
(``overall`` / ``overall_value``). Skipped steps read "(skipped)"; steps the run never
reached stay empty.

- CSV: UTF-8 with a byte order mark and ``;`` between fields, so Excel set to Finnish
  (where ``,`` is the decimal comma) opens it in columns with ä and ö intact.
- XLSX: XlsxWriter in ``constant_memory`` mode (each row is written to disk as it comes);
  the first sheet holds the responses, the second the summary measures with the
  small-number suppression of the summary ("fewer than 5").

Neither builds the file in memory: rows come from ``ResultsService.export_rows``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import xlsxwriter

from bot.flow import StepKind
from bot.measures import Cell, Figure, Measure, Proportion, StepResult
from service.reports import ExportRow, FlowSummary, ResultsFilter, ResultsService, StepSummary

TEXTS: dict[str, dict[str, str]] = {
    "response": {"fi": "Vastaus", "sv": "Svar", "en": "Response"},
    "service_point": {"fi": "Toimipiste", "sv": "Serviceställe", "en": "Service point"},
    "channel": {"fi": "Kanava", "sv": "Kanal", "en": "Channel"},
    "language": {"fi": "Kieli", "sv": "Språk", "en": "Language"},
    "status": {"fi": "Tila", "sv": "Status", "en": "Status"},
    "started": {"fi": "Aloitettu", "sv": "Påbörjad", "en": "Started"},
    "completed": {"fi": "Valmis", "sv": "Slutförd", "en": "Completed"},
    "skipped": {"fi": "(ohitettu)", "sv": "(överhoppad)", "en": "(skipped)"},
    "value": {"fi": "arvo", "sv": "värde", "en": "value"},
    "responses": {"fi": "Vastaukset", "sv": "Svar", "en": "Responses"},
    "summary": {"fi": "Yhteenveto", "sv": "Sammanfattning", "en": "Summary"},
    "step": {"fi": "Kysymys", "sv": "Fråga", "en": "Question"},
    "figure": {"fi": "Luku", "sv": "Tal", "en": "Figure"},
    "answer": {"fi": "Vastaus", "sv": "Svar", "en": "Answer"},
    "count": {"fi": "Määrä", "sv": "Antal", "en": "Count"},
    "percent": {"fi": "%", "sv": "%", "en": "%"},
    "low": {"fi": "95 % alaraja", "sv": "95 % nedre", "en": "95% low"},
    "high": {"fi": "95 % yläraja", "sv": "95 % övre", "en": "95% high"},
    "fewer_than_5": {"fi": "alle 5", "sv": "färre än 5", "en": "fewer than 5"},
    "answered": {"fi": "Vastanneet", "sv": "Besvarade", "en": "Answered"},
    "mean": {"fi": "Keskiarvo", "sv": "Medelvärde", "en": "Mean"},
    "negative": {"fi": "% kielteisiä", "sv": "% negativa", "en": "% negative"},
    "csat": {"fi": "CSAT %", "sv": "CSAT %", "en": "CSAT %"},
    "nps": {"fi": "NPS", "sv": "NPS", "en": "NPS"},
    "fft": {"fi": "% myönteisiä (FFT)", "sv": "% positiva (FFT)", "en": "% positive (FFT)"},
    "smiley": {
        "fi": "% kahta iloisinta",
        "sv": "% två gladaste",
        "en": "% two happiest faces",
    },
    "runs_started": {"fi": "Aloitettuja", "sv": "Påbörjade", "en": "Runs started"},
    "runs_completed": {"fi": "Valmiita", "sv": "Slutförda", "en": "Runs completed"},
}


def text(key: str, language: str) -> str:
    texts = TEXTS[key]
    return texts.get(language) or texts["en"]


def header(service: ResultsService, filters: ResultsFilter, language: str) -> list[str]:
    flow = service.flow(filters.flow_id)
    names = [
        text(key, language)
        for key in ("response", "service_point", "channel", "language", "status")
    ]
    names += [text("started", language), text("completed", language)]
    for step in flow.steps:
        if step.kind is StepKind.MESSAGE:
            continue
        names.append(step.id)
        if step.kind is not StepKind.TEXT:
            names.append(f"{step.id}_{text('value', language)}")
    return names


def _cells(row: ExportRow, kinds: dict[str, StepKind], language: str) -> list[Any]:
    cells: list[Any] = [
        row.run_id,
        row.service_point or "",
        row.channel,
        row.language,
        row.status,
        row.started_at,
        row.completed_at,
    ]
    for answer in row.answers:
        cells.append(text("skipped", language) if answer.skipped else answer.label)
        if kinds[answer.step_id] is not StepKind.TEXT:
            cells.append("" if answer.value is None else answer.value)
    return cells


def _local(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else ""


def _step_kinds(service: ResultsService, filters: ResultsFilter) -> dict[str, StepKind]:
    return {step.id: step.kind for step in service.flow(filters.flow_id).steps}


def iter_csv(
    service: ResultsService, filters: ResultsFilter, *, language: str = "fi"
) -> Iterator[bytes]:
    """The CSV export as byte chunks (BOM first), a few hundred rows per chunk."""
    kinds = _step_kinds(service, filters)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(header(service, filters, language))
    yield "\ufeff".encode() + buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    for index, row in enumerate(service.export_rows(filters, language=language), 1):
        writer.writerow(_csv_cells(row, kinds, language))
        if index % 500 == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def write_csv(
    service: ResultsService, filters: ResultsFilter, out: IO[bytes], *, language: str = "fi"
) -> int:
    """Write the CSV export to a binary stream; returns the number of responses."""
    kinds = _step_kinds(service, filters)
    stream = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=False)
    try:
        writer = csv.writer(stream, delimiter=";", lineterminator="\r\n")
        writer.writerow(header(service, filters, language))
        count = 0
        for row in service.export_rows(filters, language=language):
            writer.writerow(_csv_cells(row, kinds, language))
            count += 1
        stream.flush()
    finally:
        stream.detach()
    return count


def _csv_cells(row: ExportRow, kinds: dict[str, StepKind], language: str) -> list[Any]:
    cells = _cells(row, kinds, language)
    cells[5] = _local(row.started_at)
    cells[6] = _local(row.completed_at)
    return cells


def write_xlsx(
    service: ResultsService, filters: ResultsFilter, path: str | Path, *, language: str = "fi"
) -> int:
    """Write the XLSX export to ``path``; returns the number of responses."""
    kinds = _step_kinds(service, filters)
    book = xlsxwriter.Workbook(
        str(path),
        {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False},
    )
    try:
        bold = book.add_format({"bold": True})
        when = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        share = book.add_format({"num_format": "0.0"})
        responses = book.add_worksheet(text("responses", language)[:31])
        summary_sheet = book.add_worksheet(text("summary", language)[:31])
        names = header(service, filters, language)
        responses.write_row(0, 0, names, bold)
        count = 0
        for count, row in enumerate(service.export_rows(filters, language=language), 1):
            cells = _cells(row, kinds, language)
            for column, value in enumerate(cells):
                if isinstance(value, datetime):
                    responses.write_datetime(count, column, value.replace(tzinfo=None), when)
                elif value is None:
                    continue
                else:
                    responses.write(count, column, value)
        responses.freeze_panes(1, 0)
        summary = service.summary(filters, language=language)
        _write_summary(summary_sheet, summary_rows(summary, language), bold, share)
    finally:
        book.close()
    return count


def summary_rows(summary: FlowSummary, language: str) -> Iterator[list[Any]]:
    """The summary measures as table rows (also the XLSX second sheet)."""
    fewer = text("fewer_than_5", language)
    yield [text("step", language), text("figure", language), text("answer", language)] + [
        text(key, language) for key in ("count", "percent", "low", "high")
    ]
    for key, figure in (
        ("runs_started", summary.runs_started),
        ("runs_completed", summary.runs_completed),
    ):
        yield ["", text(key, language), "", fewer if figure.suppressed else figure.value]
    for step in summary.steps:
        result = step.result
        yield from _measure_rows(step.step_id, result, language)
        for cell in result.distribution:
            label = step.labels.get(cell.key, text("skipped", language))
            yield _cell_row(step.step_id, cell, label, fewer)


def _measure_rows(step_id: str, result: StepResult, language: str) -> Iterator[list[Any]]:
    fewer = text("fewer_than_5", language)
    for key, figure in (("responses", result.responses), ("answered", result.answered)):
        yield [step_id, text(key, language), "", fewer if figure.suppressed else figure.value]
    measure = result.measure.value if result.measure else None
    if result.nps is not None:
        nps = result.nps
        yield [step_id, text("nps", language), "", "", nps.score, nps.low, nps.high]
    elif measure is not None and result.positive is not None:
        p = result.positive
        name = text(measure, language)
        yield [step_id, name, "", p.numerator, p.percent, 100 * p.low, 100 * p.high]
    elif measure is not None:
        yield [step_id, text(measure, language), "", fewer]
    if result.negative is not None:
        n = result.negative
        yield [
            step_id,
            text("negative", language),
            "",
            n.numerator,
            n.percent,
            100 * n.low,
            100 * n.high,
        ]
    if result.mean is not None:
        m = result.mean
        yield [step_id, text("mean", language), "", m.n, m.mean, m.low, m.high]
    elif "mean" in result.suppressed:
        yield [step_id, text("mean", language), "", fewer]


def _cell_row(step_id: str, cell: Cell, label: str, fewer: str) -> list[Any]:
    if cell.suppressed:
        return [step_id, "", label, fewer]
    row: list[Any] = [step_id, "", label, cell.count]
    if cell.share is not None:
        row += [cell.share.percent, 100 * cell.share.low, 100 * cell.share.high]
    return row


def _write_summary(sheet: Any, rows: Iterator[list[Any]], bold: Any, share: Any) -> None:
    for index, row in enumerate(rows):
        for column, value in enumerate(row):
            if value is None or value == "":
                continue
            if isinstance(value, float):
                sheet.write_number(index, column, value, share)
            else:
                sheet.write(index, column, value, bold if index == 0 else None)


# --- JSON (``palaute results summary --json``; shape documented in docs/results.md) -------


def _proportion_json(p: Proportion) -> dict[str, Any]:
    return {
        "count": p.numerator,
        "base": p.denominator,
        "percent": round(p.percent, 2),
        "low": round(100 * p.low, 2),
        "high": round(100 * p.high, 2),
    }


def _figure_json(figure: Figure) -> dict[str, Any]:
    return {"suppressed": True} if figure.suppressed else {"count": figure.value}


def _step_json(step: StepSummary) -> dict[str, Any]:
    result = step.result
    cells = []
    for cell in result.distribution:
        item: dict[str, Any] = {
            "value": cell.value,
            "label": step.labels.get(cell.key),
            "kind": cell.kind.value,
        }
        if cell.suppressed:
            item["suppressed"] = True
        else:
            item["count"] = cell.count
            if cell.share is not None:
                share = _proportion_json(cell.share)
                item.update(percent=share["percent"], low=share["low"], high=share["high"])
        cells.append(item)
    data: dict[str, Any] = {
        "id": step.step_id,
        "kind": step.kind.value,
        "question": step.title,
        "measure": result.measure.value if result.measure else None,
        "responses": _figure_json(result.responses),
        "answered": _figure_json(result.answered),
        "distribution": cells,
    }
    measure = result.measure
    hidden = set(result.suppressed)
    if measure in (Measure.CSAT, Measure.SMILEY, Measure.FFT):
        if result.positive is not None:
            data["positive"] = _proportion_json(result.positive)
        elif "positive" in hidden:
            data["positive"] = {"suppressed": True}
    if measure is Measure.FFT:
        if result.negative is not None:
            data["negative"] = _proportion_json(result.negative)
        elif "negative" in hidden:
            data["negative"] = {"suppressed": True}
    if result.nps is not None:
        nps = result.nps
        data["nps"] = {
            "score": round(nps.score, 2),
            "low": round(nps.low, 2),
            "high": round(nps.high, 2),
            "promoters": _proportion_json(nps.promoters),
            "detractors": _proportion_json(nps.detractors),
        }
    elif "nps" in hidden:
        data["nps"] = {"suppressed": True}
    if result.mean is not None:
        mean = result.mean
        data["mean"] = {
            "n": mean.n,
            "mean": round(mean.mean, 4),
            "low": None if mean.low is None else round(mean.low, 4),
            "high": None if mean.high is None else round(mean.high, 4),
        }
    elif "mean" in hidden:
        data["mean"] = {"suppressed": True}
    return data


def summary_json(summary: FlowSummary) -> dict[str, Any]:
    """The summary as one JSON object (docs/results.md describes every field)."""
    f = summary.filters
    return {
        "flow": summary.flow_id,
        "title": summary.title,
        "filters": {
            "point": f.point,
            "channel": f.channel,
            "language": f.language,
            "from": f.date_from.isoformat() if f.date_from else None,
            "to": f.date_to.isoformat() if f.date_to else None,
            "include_test": f.include_test,
        },
        "runs": {
            "started": _figure_json(summary.runs_started),
            "completed": _figure_json(summary.runs_completed),
        },
        "main_step": summary.main_step,
        "steps": [_step_json(step) for step in summary.steps],
    }
