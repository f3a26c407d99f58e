"""``palaute users ...``: what an administrator types and sees, and what gets stored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from bot.catalogue import Catalogue
from palaute.cli import main
from service.accounts import AccountService, SignInOutcome
from storage.db import make_engine
from tests.service.staff_support import CHEAP_ARGON2, cheap_hasher, write_staff_flows

NOW = datetime(2026, 5, 14, 9, 0, tzinfo=UTC)


@pytest.fixture
def flows_dir(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = write_staff_flows(tmp_path / "flows")
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("FLOWS_DIR", str(directory))
    for name, value in CHEAP_ARGON2.items():
        monkeypatch.setenv(name, str(value))
    return directory


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["users", *args], input=input)


def sign_in(db_url: str, flows_dir: Path, email: str, password: str) -> SignInOutcome:
    engine = make_engine(db_url)
    try:
        accounts = AccountService(engine, Catalogue.load(flows_dir), hasher=cheap_hasher())
        return accounts.authenticate(email, password, NOW).outcome
    finally:
        engine.dispose()


def stored(db_url: str) -> list[tuple[object, ...]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            return [
                tuple(row)
                for row in connection.execute(
                    sa.text(
                        "SELECT u.email, u.role, u.disabled_at IS NOT NULL, p.service_point "
                        "FROM staff_users u LEFT JOIN staff_user_points p ON p.user_id = u.id "
                        "ORDER BY u.email, p.service_point"
                    )
                )
            ]
    finally:
        engine.dispose()


def test_add_with_a_password_from_stdin_then_list(flows_dir: Path, db_url: str) -> None:
    result = run(
        "add", "Anna@Example.fi", "--role", "analyst", "--points", "main-library,village-library",
        "--password-stdin", input="a long enough passphrase\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # nothing generated, nothing printed on stdout
    assert "added anna@example.fi (analyst)" in result.stderr
    assert stored(db_url) == [
        ("anna@example.fi", "analyst", False, "main-library"),
        ("anna@example.fi", "analyst", False, "village-library"),
    ]
    assert sign_in(db_url, flows_dir, "anna@example.fi", "a long enough passphrase") is (
        SignInOutcome.OK
    )

    listed = run("list")
    assert listed.exit_code == 0
    assert listed.stdout == (
        "anna@example.fi\tanalyst\tactive\tmain-library,village-library\t2026-05-14 09:00\n"
    )


def test_a_generated_password_is_printed_once_and_works(flows_dir: Path, db_url: str) -> None:
    result = run("add", "boss@example.fi", "--role", "admin")
    assert result.exit_code == 0, result.output
    password = result.stdout.strip()
    assert len(password) >= 16 and "\n" not in password
    assert "not shown again" in result.stderr
    assert sign_in(db_url, flows_dir, "boss@example.fi", password) is SignInOutcome.OK
    assert password not in run("list").output


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["add", "a@example.fi", "--role", "boss"], None,
         "Invalid value for '--role': 'boss' is not one of 'admin', 'editor', 'analyst'."),
        (["add", "a@example.fi", "--role", "analyst", "--points", "main-libary"], None,
         "unknown service point 'main-libary': did you mean 'main-library'?"),
        (["add", "a@example.fi", "--role", "admin", "--points", "main-library"], None,
         "admins see every service point"),
        (["add", "a@example.fi", "--role", "editor", "--password-stdin"], "short\n",
         "the password is too short (5 characters): use at least 12"),
        (["add", "a@example.fi", "--role", "editor", "--password-stdin"], "",
         "no password on stdin"),
        (["add", "not-an-email", "--role", "editor"], None, "is not an email address"),
        (["disable", "nobody@example.fi"], None, "no user nobody@example.fi"),
        (["set-password", "nobody@example.fi"], None, "no user nobody@example.fi"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_error_and_stores_nothing(
    flows_dir: Path, db_url: str, args: list[str], stdin: str | None, message: str
) -> None:
    result = run(*args, input=stdin)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert stored(db_url) == []


def test_a_duplicate_email_is_refused_whatever_its_case(flows_dir: Path, db_url: str) -> None:
    assert run("add", "anna@example.fi", "--role", "editor").exit_code == 0
    again = run("add", "ANNA@example.fi", "--role", "analyst")
    assert again.exit_code == 1
    assert "Error: a user anna@example.fi exists already" in again.output
    assert stored(db_url) == [("anna@example.fi", "editor", False, None)]


def test_disable_enable_and_set_password(flows_dir: Path, db_url: str) -> None:
    first = run("add", "anna@example.fi", "--role", "analyst").stdout.strip()
    pointless = run("add", "b@example.fi", "--role", "analyst")
    assert "note: no service points granted" in pointless.stderr

    assert run("disable", "Anna@example.fi").stdout == "disabled anna@example.fi\n"
    assert "anna@example.fi\tanalyst\tdisabled\t-\tnever" in run("list").stdout
    assert sign_in(db_url, flows_dir, "anna@example.fi", first) is SignInOutcome.DISABLED
    assert run("enable", "anna@example.fi").stdout == "enabled anna@example.fi\n"
    assert sign_in(db_url, flows_dir, "anna@example.fi", first) is SignInOutcome.OK

    generated = run("set-password", "anna@example.fi")
    assert generated.exit_code == 0
    new = generated.stdout.strip()
    assert new != first
    assert sign_in(db_url, flows_dir, "anna@example.fi", first) is SignInOutcome.WRONG
    assert sign_in(db_url, flows_dir, "anna@example.fi", new) is SignInOutcome.OK

    given = run("set-password", "anna@example.fi", "--password-stdin", input="mine own secret\n")
    assert given.exit_code == 0 and given.stdout == ""
    assert sign_in(db_url, flows_dir, "anna@example.fi", "mine own secret") is SignInOutcome.OK
    weak = run("set-password", "anna@example.fi", "--password-stdin", input="tiny\n")
    assert weak.exit_code == 1 and "too short" in weak.output
