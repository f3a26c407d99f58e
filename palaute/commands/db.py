"""`palaute db ...`: apply and inspect database migrations (DATABASE_URL)."""

from __future__ import annotations

import click
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from palaute.config import Settings
from storage import migrate


def _url(url: str | None) -> str:
    return url or Settings().database_url


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _fail(action: str, url: str, error: Exception) -> click.ClickException:
    detail = str(getattr(error, "orig", None) or error).strip().splitlines()
    return click.ClickException(
        f"could not {action} {_shown(url)}: {detail[0] if detail else type(error).__name__}\n"
        "Check DATABASE_URL and that the database server is running."
    )


url_option = click.option(
    "--url",
    "url",
    default=None,
    metavar="URL",
    help="Database URL (default: DATABASE_URL, else the local SQLite file).",
)


@click.group()
def db() -> None:
    """Database migrations (DATABASE_URL)."""


@db.command()
@url_option
@click.option("--revision", default="heads", show_default=True, help="Target revision.")
def upgrade(url: str | None, revision: str) -> None:
    """Create or update the tables (safe to run again)."""
    target = _url(url)
    try:
        before = migrate.current(target)
        migrate.upgrade(target, revision)
        after = migrate.current(target)
    except (sa_exc.SQLAlchemyError, OSError, ValueError) as error:
        raise _fail("upgrade", target, error) from error
    if before == after:
        click.echo(f"{_shown(target)} is up to date ({after}).")
    else:
        click.echo(f"{_shown(target)} upgraded: {before or 'empty'} -> {after}.")


@db.command()
@url_option
def current(url: str | None) -> None:
    """Show the revision the database is at."""
    target = _url(url)
    try:
        revision = migrate.current(target)
    except (sa_exc.SQLAlchemyError, OSError, ValueError) as error:
        raise _fail("read", target, error) from error
    head = migrate.head()
    if revision is None:
        click.echo(f"{_shown(target)}: no tables yet (run `palaute db upgrade`).")
    elif revision == head:
        click.echo(f"{_shown(target)}: {revision} (head)")
    else:
        click.echo(f"{_shown(target)}: {revision} (head is {head}: run `palaute db upgrade`)")


@db.command()
@url_option
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def downgrade(url: str | None, revision: str, yes: bool) -> None:
    """Go back to REVISION ("base" removes every table and ALL data)."""
    target = _url(url)
    if not yes:
        click.confirm(
            f"Downgrade {_shown(target)} to {revision}? Data in removed tables is lost.",
            abort=True,
        )
    try:
        migrate.downgrade(target, revision)
        after = migrate.current(target)
    except (sa_exc.SQLAlchemyError, OSError, ValueError) as error:
        raise _fail("downgrade", target, error) from error
    click.echo(f"{_shown(target)} is now at {after or 'base (no tables)'}.")
