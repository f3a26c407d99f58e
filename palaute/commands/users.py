"""``palaute users add|list|disable|enable|set-password``: staff accounts for /dashboard.

    palaute users add anna@example.fi --role analyst --points kaarina-main-library
    printf '%s\\n' "$PASSWORD" | palaute users add boss@example.fi --role admin --password-stdin
    palaute users list
    palaute users disable anna@example.fi
    palaute users set-password anna@example.fi            # generates and prints one

A generated password is printed once on stdout (and nowhere stored but as its hash).
Service points are the ``service_points`` the flows in FLOWS_DIR name.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from bot.flow_problems import FlowError
from palaute.config import Settings
from service.accounts import AccountError, AccountService, Role, StaffUser
from service.errors import StorageError
from service.timesource import utcnow


@contextmanager
def _accounts() -> Iterator[AccountService]:
    from bot.catalogue import Catalogue
    from palaute.services import build_accounts, build_engine

    settings = Settings()
    try:
        catalogue = Catalogue.load(settings.flows_dir)
    except FlowError as error:
        raise click.ClickException(
            f"the flows in {settings.flows_dir} have errors (palaute flows validate):\n{error}"
        ) from error
    db = build_engine(settings)
    try:
        yield build_accounts(settings, db, catalogue)
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    except StorageError as error:
        raise click.ClickException(f"database error: {error}") from error
    finally:
        db.dispose()


def _read_password() -> str:
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise click.ClickException("--password-stdin: no password on stdin (one line expected)")
    return password


def _points_option(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


def _show_generated(password: str | None) -> None:
    if password is None:
        return
    click.echo(password)
    click.echo(
        "Give this password to the user over a safe channel: it is not shown again "
        "(only its hash is kept). They can change it on their account page.",
        err=True,
    )


@click.group()
def users() -> None:
    """Staff accounts for the /dashboard pages."""


@users.command("add")
@click.argument("email")
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in Role], case_sensitive=False),
    help="admin: everything and the users; editor: flows and results of their points; "
    "analyst: results and comments of their points.",
)
@click.option(
    "--points",
    default=None,
    metavar="P1,P2",
    help="Service points an editor or analyst may see (comma-separated).",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (one line).")
def add(email: str, role: str, points: str | None, password_stdin: bool) -> None:
    """Add a user EMAIL; prints a generated password unless --password-stdin."""
    password = _read_password() if password_stdin else None
    with _accounts() as accounts:
        user, generated = accounts.add(
            email, Role(role.lower()), points=_points_option(points), password=password,
            now=utcnow(),
        )  # fmt: skip
    click.echo(f"added {user.email} ({user.role.value})", err=True)
    if user.role is not Role.ADMIN and not user.points:
        click.echo(
            "note: no service points granted, so this user sees nothing yet "
            "(grant them on the users page, or add again with --points)",
            err=True,
        )
    _show_generated(generated)


def _state(user: StaffUser) -> str:
    if user.disabled:
        return "disabled"
    now = utcnow()
    if user.locked_until is not None and user.locked_until > now:
        return f"locked until {user.locked_until:%Y-%m-%d %H:%M} UTC"
    return "active"


@users.command("list")
def list_users() -> None:
    """Users: email, role, state, service points, last sign-in (tab-separated)."""
    with _accounts() as accounts:
        found = accounts.all_users()
    if not found:
        click.echo("No users yet: palaute users add EMAIL --role admin", err=True)
    for user in found:
        points = "(all)" if user.is_admin else ",".join(sorted(user.points)) or "-"
        last = f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at else "never"
        click.echo(f"{user.email}\t{user.role.value}\t{_state(user)}\t{points}\t{last}")


@users.command("disable")
@click.argument("email")
def disable(email: str) -> None:
    """Stop EMAIL from signing in and end their sessions (the account stays)."""
    with _accounts() as accounts:
        user = accounts.set_disabled(accounts.find(email).id, True, utcnow())
    click.echo(f"disabled {user.email}")


@users.command("enable")
@click.argument("email")
def enable(email: str) -> None:
    """Let a disabled EMAIL sign in again (also lifts a lockout)."""
    with _accounts() as accounts:
        user = accounts.set_disabled(accounts.find(email).id, False, utcnow())
    click.echo(f"enabled {user.email}")


@users.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (one line).")
def set_password(email: str, password_stdin: bool) -> None:
    """Give EMAIL a new password (generated and printed unless --password-stdin); lifts a
    lockout and ends their sessions."""
    password = _read_password() if password_stdin else None
    with _accounts() as accounts:
        user, generated = accounts.set_password(accounts.find(email).id, password)
    click.echo(f"new password set for {user.email}", err=True)
    _show_generated(generated)
