"""``palaute flows``: check flow files, print their JSON Schema, run their transcripts.

    palaute flows validate                 # every file in FLOWS_DIR
    palaute flows validate flows/x.yaml --max-segments 1
    palaute flows schema > flow.schema.json
    palaute flows test                     # tests/transcripts/**.yaml against FLOWS_DIR

``validate`` exits 1 when any file has an error (warnings alone exit 0, unless
``--strict``); ``test`` exits 1 when a transcript fails (or, with ``--coverage``, when a
branch of a flow is not taken in some declared language).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from bot.catalogue import Catalogue, read_catalogue
from bot.flow_loader import Reading
from bot.flow_problems import Problem
from bot.flow_schema import flow_schema
from bot.flow_validate import segment_problems, segment_report
from bot.transcripts import read_transcripts, run_transcript, uncovered
from palaute.config import REPO_ROOT, Settings

DEFAULT_TRANSCRIPTS = REPO_ROOT / "tests" / "transcripts"


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it is inside it (shorter messages)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


@click.group()
def flows() -> None:
    """Check, describe and test survey flows (YAML files)."""


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        click.echo(problem.format(), err=False)


def _segment_table(reading: Reading) -> None:
    flow = reading.draft
    if flow is None:
        return
    costs = segment_report(flow, reading.positions)
    if not costs:
        return
    click.echo(f"  SMS segments per text ({', '.join(flow.languages)}):")
    rows: dict[str, dict[str, str]] = {}
    for cost in costs:
        label = cost.path
        if cost.path.startswith("steps["):
            index = int(cost.path[6 : cost.path.index("]")])
            label = f"{flow.steps[index].id}.{cost.path.rsplit('.', 1)[-1]}"
        count = cost.count
        rows.setdefault(label, {})[cost.language] = (
            f"{count.segments} {'GSM' if count.encoding.value == 'GSM-7' else 'UCS'} {count.units}"
        )
    width = max(len(label) for label in rows)
    for label, cells in rows.items():
        line = "  ".join(f"{cells.get(language, '-'):<12}" for language in flow.languages)
        click.echo(f"    {label:<{width}}  {line}".rstrip())


@flows.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--max-segments",
    type=click.IntRange(min=1),
    default=None,
    help="Warn when a text costs more SMS segments (default: SMS_MAX_SEGMENTS, 2).",
)
@click.option("--segments/--no-segments", default=True, help="Print the SMS cost of each text.")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
def validate(
    paths: tuple[Path, ...], max_segments: int | None, segments: bool, strict: bool
) -> None:
    """Check flow files (default: every flow in FLOWS_DIR) and report every problem."""
    settings = Settings()
    if max_segments is None:
        max_segments = settings.sms_max_segments
    readings = read_catalogue([_shown(p) for p in paths or [settings.flows_dir]])
    if not readings:
        click.echo("no flow files found (*.yaml)", err=True)
        raise SystemExit(1)
    errors = warnings = 0
    for reading in readings:
        problems = list(reading.problems)
        if reading.draft is not None:
            problems += segment_problems(
                reading.draft, reading.positions, max_segments, reading.source
            )
            problems.sort(key=lambda p: (p.line, p.column))
        file_errors = sum(1 for p in problems if p.is_error)
        errors += file_errors
        warnings += len(problems) - file_errors
        if file_errors:
            status = f"{file_errors} error(s)"
        else:
            flow = reading.flow
            assert flow is not None
            status = f"ok: {flow.id}, {len(flow.steps)} steps, {'/'.join(flow.languages)}"
        click.echo(f"{reading.source}: {status}")
        _print_problems(problems)
        if segments:
            _segment_table(reading)
    click.echo(f"{len(readings)} file(s), {errors} error(s), {warnings} warning(s)")
    if errors or (strict and warnings):
        raise SystemExit(1)


@flows.command("schema")
def schema() -> None:
    """Print the JSON Schema of flow files (for editor completion)."""
    click.echo(json.dumps(flow_schema(), indent=2, ensure_ascii=False))


@flows.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--flows-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Where the flows are (default: FLOWS_DIR).",
)
@click.option(
    "--coverage", is_flag=True, help="Fail when a branch is not taken in some declared language."
)
@click.option("-v", "--verbose", is_flag=True, help="List every transcript, not only failures.")
def test(paths: tuple[Path, ...], flows_dir: Path | None, coverage: bool, verbose: bool) -> None:
    """Run transcript files (default: tests/transcripts) against the flows."""
    directory = flows_dir or Settings().flows_dir
    catalogue_readings = read_catalogue([_shown(directory)])
    broken = [p for r in catalogue_readings for p in r.problems if p.is_error]
    if broken:
        _print_problems(broken)
        click.echo("the flows have errors: run `palaute flows validate` first")
        raise SystemExit(1)
    catalogue = Catalogue(r.flow for r in catalogue_readings if r.flow is not None)
    transcripts, problems = read_transcripts([_shown(p) for p in paths or [DEFAULT_TRANSCRIPTS]])
    bad_files = [p for p in problems if p.is_error]
    _print_problems(bad_files)
    results = [run_transcript(t, catalogue) for t in transcripts]
    failed = [r for r in results if not r.passed]
    for result in results:
        if result.passed and verbose:
            click.echo(f"PASS {result.transcript.title}")
        elif not result.passed:
            click.echo(f"FAIL {result.transcript.title}")
            for failure in result.failures:
                click.echo("  " + failure.replace("\n", "\n  "))
    gaps = 0
    if coverage:
        tested = {r.transcript.flow_id for r in results}
        for flow in catalogue.all():
            if flow.id not in tested:
                click.echo(f"NOT COVERED {flow.id}: no transcripts")
                gaps += 1
                continue
            for language, moves in uncovered(flow, results).items():
                for source, target in moves:
                    click.echo(f"NOT COVERED {flow.id} [{language}]: {source} → {target}")
                    gaps += 1
    click.echo(
        f"{len(results)} transcript(s): {len(results) - len(failed)} passed, {len(failed)} failed"
        + (f", {gaps} branch(es) not covered" if coverage else "")
    )
    if failed or bad_files or gaps or not results:
        raise SystemExit(1)
