"""``palaute visits import FILE.csv`` and ``palaute api-token create|revoke|list``.

    palaute visits import kaynnit.csv
    palaute visits import export.csv --column external_id=Varausnumero --column phone=GSM
    palaute visits import export.csv --dry-run

Re-importing a file schedules nothing twice (visits are unique per source and id; the
source defaults to ``csv``). Rejected lines are listed with their line numbers and reasons
and the exit status is 1 when there were any; the valid lines are kept either way.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from palaute.config import Settings
from palaute.services import build_engine
from service import api_tokens
from service.errors import StorageError
from service.timesource import utcnow
from service.visits import FIELDS, MAX_TEXT, Intake, RowError, Visit, VisitsService
from service.visits_csv import CsvImportError, read_export

BATCH = 500


def _column_option(values: tuple[str, ...]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for value in values:
        name, sep, column = value.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise click.BadParameter(
                f"{value!r}: write FIELD=COLUMN, e.g. phone=Matkapuhelin", param_hint="--column"
            )
        mapping[name.strip()] = column.strip()
    return mapping


@click.group()
def visits() -> None:
    """Visits for follow-up surveys."""


@visits.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Which column holds a field (repeatable). Fields: " + ", ".join(FIELDS) + ".",
)
@click.option("--source", default="csv", show_default=True, help="Name of the exporting system.")
@click.option("--organisation", default=None, help="Organisation (default ORGANISATION_NAME).")
@click.option(
    "--timezone",
    "zone",
    default=None,
    help="Zone of visit times written without offset (default ORGANISATION_TIMEZONE).",
)
@click.option("--flow", "flow_id", default=None, help="Flow for rows that name none.")
@click.option("--encoding", default=None, help="Force an encoding (default: detected).")
@click.option(
    "--delimiter", type=click.Choice([";", ",", "tab"]), default=None, help="Default: sniffed."
)
@click.option("--dry-run", is_flag=True, help="Check and report, store nothing.")
def import_visits(
    file: Path,
    columns: tuple[str, ...],
    source: str,
    organisation: str | None,
    zone: str | None,
    flow_id: str | None,
    encoding: str | None,
    delimiter: str | None,
    dry_run: bool,
) -> None:
    """Import visits from a CSV export (UTF-8, UTF-8 with BOM or Windows-1252; ; or ,)."""
    from bot.catalogue import Catalogue

    settings = Settings()
    try:
        export = read_export(
            file.read_bytes(),
            columns=_column_option(columns),
            encoding=encoding,
            delimiter="\t" if delimiter == "tab" else delimiter,
        )
    except CsvImportError as error:
        raise click.ClickException(f"{file}: {error}") from error
    click.echo(
        f"{file.name}: {len(export.rows)} rows, {export.encoding}, {export.delimiter_name}-"
        "separated; columns: "
        + ", ".join(f"{name}={column!r}" for name, column in export.mapping.items()),
        err=True,
    )
    catalogue = Catalogue.load(settings.flows_dir)
    if flow_id and catalogue.get(flow_id) is None:
        raise click.BadParameter(
            f"no flow {flow_id!r} in {settings.flows_dir}", param_hint="--flow"
        )
    intake = Intake(
        flows=catalogue,
        organisation=organisation or settings.organisation_name,
        organisation_zone=settings.organisation_timezone,
        default_region=settings.phone_default_region,
        default_flow=flow_id or settings.followup_default_flow or None,
        naive_zone=zone or settings.organisation_timezone,
    )
    try:
        intake.zone(intake.naive_zone or intake.organisation_zone)
    except Exception as error:
        raise click.BadParameter(f"unknown time zone: {error}", param_hint="--timezone") from error

    visit_service = VisitsService(
        build_engine(settings), address_key_secret=settings.address_key_secret
    )
    now = utcnow()
    counts: Counter[str] = Counter()
    skips: Counter[str] = Counter()
    rejected: list[tuple[int, list[RowError]]] = []
    pending: list[tuple[int, Visit]] = []
    seen: set[str] = set()

    def flush() -> None:
        if not pending:
            return
        batch = [visit for _, visit in pending]
        if dry_run:
            known = visit_service.known_ids(
                intake.organisation, source, [v.external_id for v in batch]
            )
            for visit in batch:
                if visit.external_id in known or visit.external_id in seen:
                    counts["duplicate"] += 1
                else:
                    counts["skipped" if visit.skip else "scheduled"] += 1
                    if visit.skip:
                        skips[visit.skip.value] += 1
                seen.add(visit.external_id)
        else:
            for result in visit_service.store(batch, now):
                counts[result.status] += 1
                if result.skip is not None:
                    skips[result.skip.value] += 1
        pending.clear()

    try:
        with click.progressbar(
            export.rows,
            label="Checking" if dry_run else "Importing",
            file=sys.stderr,
            show_pos=True,
        ) as rows:
            for row in rows:
                values: dict[str, Any] = dict(row.values)
                outcome = intake.validate(values, source=source, now=now)
                if isinstance(outcome, list):
                    rejected.append((row.line, outcome))
                    counts["error"] += 1
                    continue
                pending.append((row.line, outcome))
                if len(pending) >= BATCH:
                    flush()
            flush()
    except StorageError as error:
        hint = " (run the same import again: rows already stored are not duplicated)"
        raise click.ClickException(f"database error: {error}{hint}") from error
    finally:
        visit_service.close()

    click.echo(
        f"{'DRY RUN, nothing stored: ' if dry_run else ''}{counts['scheduled']} scheduled, "
        f"{counts['skipped']} skipped, {counts['duplicate']} already imported, "
        f"{counts['error']} rejected."
    )
    if skips:
        click.echo(
            "Skipped (stored, no survey sent): "
            + ", ".join(f"{reason} {n}" for reason, n in sorted(skips.items()))
        )
    if rejected:
        click.echo(f"Rejected lines ({len(rejected)}), not stored - fix and import again:")
        for line, errors in rejected:
            reasons = "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in errors)
            click.echo(f"  line {line}: {reasons}")
        raise SystemExit(1)


@click.group("api-token")
def api_token() -> None:
    """Bearer tokens for POST /api/visits (stored hashed; shown once)."""


@api_token.command("create")
@click.argument("name")
@click.option("--organisation", default=None, help="Organisation (default ORGANISATION_NAME).")
@click.option(
    "--source",
    default=None,
    help="The source its visits are stored under (default NAME). Fixed: a request naming "
    "another source is refused (403).",
)
def create_token(name: str, organisation: str | None, source: str | None) -> None:
    """Make a token NAME (e.g. the sending system) and print it once."""
    if source is not None and not source.strip():
        raise click.BadParameter("give a source name, or leave --source out", param_hint="--source")
    if source is not None and len(source.strip()) > MAX_TEXT["source"]:
        raise click.BadParameter(
            f"longer than {MAX_TEXT['source']} characters", param_hint="--source"
        )
    settings = Settings()
    db = build_engine(settings)
    try:
        token = api_tokens.create(
            db,
            organisation or settings.organisation_name,
            name,
            utcnow(),
            source=source.strip() if source else None,
        )
    except api_tokens.TokenNameTaken as error:
        raise click.ClickException(str(error)) from error
    except StorageError as error:
        raise click.ClickException(f"database error: {error}") from error
    finally:
        db.dispose()
    click.echo(token)
    click.echo(
        "Store this token now: it is not shown again (only its hash is kept). "
        "Send it as: Authorization: Bearer <token>. "
        f"Its visits are stored under source {(source or name).strip()!r}.",
        err=True,
    )


@api_token.command("revoke")
@click.argument("name")
@click.option("--organisation", default=None, help="Organisation (default ORGANISATION_NAME).")
def revoke_token(name: str, organisation: str | None) -> None:
    """Stop accepting the token NAME."""
    settings = Settings()
    db = build_engine(settings)
    try:
        done = api_tokens.revoke(db, organisation or settings.organisation_name, name, utcnow())
    finally:
        db.dispose()
    if not done:
        raise click.ClickException(f"no active token named {name!r}")
    click.echo(f"revoked {name}")


@api_token.command("list")
def list_tokens() -> None:
    """Tokens by organisation and name, with their source (never the tokens themselves).

    Columns (tab-separated): organisation, name, source, created, state.
    """
    settings = Settings()
    db = build_engine(settings)
    try:
        tokens = api_tokens.list_all(db)
    finally:
        db.dispose()
    for token in tokens:
        state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
        click.echo(
            f"{token.organisation}\t{token.name}\t{token.source}\t"
            f"{token.created_at:%Y-%m-%d}\t{state}"
        )


@visits.command("report")
@click.option("--organisation", default=None, help="Organisation (default ORGANISATION_NAME).")
@click.option(
    "--since", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Visits on or after DATE."
)
def report(organisation: str | None, since: datetime | None) -> None:
    """Per flow: visits, surveys sent, skipped (why), delivered, started, completed."""
    settings = Settings()
    zone = ZoneInfo(settings.organisation_timezone)
    visit_service = VisitsService(
        build_engine(settings), address_key_secret=settings.address_key_secret
    )
    try:
        rows = visit_service.funnel(
            organisation or settings.organisation_name,
            since.replace(tzinfo=zone) if since else None,
        )
    except StorageError as error:
        raise click.ClickException(f"database error: {error}") from error
    finally:
        visit_service.close()
    if not rows:
        click.echo("No visits yet.")
        return

    def share(part: int, whole: int) -> str:
        return f"{part} ({100 * part / whole:.0f}%)" if whole else str(part)

    for row in rows:
        click.echo(f"{row.flow_id}: {row.visits} visits")
        click.echo(f"  sent       {share(row.sent, row.visits)}")
        for reason, count in row.skipped.items():
            click.echo(f"  skipped    {share(count, row.visits)}  {reason}")
        if row.pending:
            click.echo(f"  waiting    {share(row.pending, row.visits)}")
        click.echo(f"  delivered  {share(row.delivered, row.sent)} of sent")
        click.echo(f"  started    {share(row.started, row.sent)} of sent")
        click.echo(f"  completed  {share(row.completed, row.sent)} of sent")
        if row.reminders_sent:
            click.echo(f"  reminders  {row.reminders_sent}")
