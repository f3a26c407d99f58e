"""Staff accounts on SQLite and PostgreSQL: adding users, passwords, the sign-in lockout,
disabling, and which service points and flows each role sees."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy import Engine

from bot.catalogue import Catalogue
from service.accounts import (
    AccountError,
    AccountService,
    BadEmail,
    EmailInUse,
    LockoutPolicy,
    NoSuchUser,
    Role,
    SignInOutcome,
    UnknownPoint,
    WeakPassword,
    WrongPassword,
    parse_role,
)
from tests.service.staff_support import POINTS, cheap_hasher, write_staff_flows

NOW = datetime(2026, 5, 14, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(engine: Engine, tmp_path: Path) -> Iterator[AccountService]:
    catalogue = Catalogue.load(write_staff_flows(tmp_path / "flows"))
    yield AccountService(
        engine, catalogue, hasher=cheap_hasher(), lockout=LockoutPolicy(attempts=3, minutes=15)
    )


def stored_users(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                sa.text("SELECT email, role, password_hash FROM staff_users ORDER BY id")
            )
        ]


def test_a_user_is_stored_with_a_lower_case_email_and_only_an_argon2_hash(
    accounts: AccountService, engine: Engine
) -> None:
    user, generated = accounts.add(
        " Anna.Analyst@Example.FI ", Role.ANALYST, points=["main-library"], password=PASSWORD,
        now=NOW,
    )  # fmt: skip
    assert generated is None
    assert (user.email, user.role, user.points) == (
        "anna.analyst@example.fi",
        Role.ANALYST,
        frozenset({"main-library"}),
    )
    [(email, role, password_hash)] = stored_users(engine)
    assert (email, role) == ("anna.analyst@example.fi", "analyst")
    assert str(password_hash).startswith("$argon2id$") and PASSWORD not in str(password_hash)
    assert [u.email for u in accounts.all_users()] == ["anna.analyst@example.fi"]
    assert accounts.find("ANNA.analyst@example.fi").id == user.id


def test_an_email_is_unique_whatever_its_case(accounts: AccountService) -> None:
    accounts.add("anna@example.fi", Role.EDITOR, password=PASSWORD, now=NOW)
    with pytest.raises(EmailInUse, match=r"a user anna@example\.fi exists already"):
        accounts.add("ANNA@Example.fi", Role.ANALYST, password=PASSWORD, now=NOW)


@pytest.mark.parametrize(
    ("email", "role", "points", "password", "error", "message"),
    [
        ("not-an-email", Role.ANALYST, [], PASSWORD, BadEmail, "is not an email address"),
        ("a@b.fi", Role.ANALYST, ["main-libary"], PASSWORD, UnknownPoint,
         "unknown service point 'main-libary': did you mean 'main-library'?"),
        ("a@b.fi", Role.ANALYST, ["nowhere"], PASSWORD, UnknownPoint,
         "the flows name health-centre, main-library, village-library"),
        ("a@b.fi", Role.ADMIN, ["main-library"], PASSWORD, AccountError,
         "admins see every service point"),
        ("a@b.fi", Role.ANALYST, [], "short", WeakPassword,
         r"too short \(5 characters\): use at least 12"),
        ("a@b.fi", Role.ANALYST, [], "x" * 300, WeakPassword, "too long"),
        ("anna.lyytikainen@b.fi", Role.ANALYST, [], "Anna.Lyytikainen@b.fi", WeakPassword,
         "must not be the email address"),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_with_what_to_do(
    accounts: AccountService,
    engine: Engine,
    email: str,
    role: Role,
    points: list[str],
    password: str,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        accounts.add(email, role, points=points, password=password, now=NOW)
    assert stored_users(engine) == []


def test_a_role_is_parsed_or_refused() -> None:
    assert parse_role(" Editor ") is Role.EDITOR
    with pytest.raises(AccountError, match="unknown role 'boss': use one of admin, editor"):
        parse_role("boss")


def test_a_generated_password_signs_in(accounts: AccountService) -> None:
    user, generated = accounts.add("e@example.fi", Role.EDITOR, password=None, now=NOW)
    assert generated is not None and len(generated) >= 16
    signed = accounts.authenticate("E@example.fi", generated, NOW)
    assert signed.outcome is SignInOutcome.OK
    assert signed.user is not None and signed.user.id == user.id
    assert signed.user.last_login_at == NOW


def test_wrong_passwords_lock_the_account_until_the_lock_runs_out(
    accounts: AccountService,
) -> None:
    accounts.add("a@example.fi", Role.ANALYST, password=PASSWORD, now=NOW)
    assert accounts.authenticate("a@example.fi", "wrong one 1", NOW).outcome is SignInOutcome.WRONG
    assert accounts.authenticate("a@example.fi", "wrong one 2", NOW).outcome is SignInOutcome.WRONG
    third = accounts.authenticate("a@example.fi", "wrong one 3", NOW)
    assert (third.outcome, third.locked_until) == (
        SignInOutcome.LOCKED,
        NOW + timedelta(minutes=15),
    )
    # Locked: even the right password is refused, and the lock does not grow.
    later = NOW + timedelta(minutes=14)
    locked = accounts.authenticate("a@example.fi", PASSWORD, later)
    assert (locked.outcome, locked.locked_until) == (
        SignInOutcome.LOCKED,
        NOW + timedelta(minutes=15),
    )
    # After the lock: the right password works, and the count starts again.
    after = NOW + timedelta(minutes=15, seconds=1)
    assert accounts.authenticate("a@example.fi", PASSWORD, after).outcome is SignInOutcome.OK
    assert accounts.authenticate("a@example.fi", "wrong again", after).outcome is (
        SignInOutcome.WRONG
    )
    assert accounts.find("a@example.fi").locked_until is None


def test_a_lock_that_ran_out_counts_from_one_again(accounts: AccountService) -> None:
    accounts.add("a@example.fi", Role.ANALYST, password=PASSWORD, now=NOW)
    for attempt in range(3):
        accounts.authenticate("a@example.fi", f"wrong {attempt}", NOW)
    after = NOW + timedelta(minutes=16)
    outcome = accounts.authenticate("a@example.fi", "wrong again", after)
    assert outcome.outcome is SignInOutcome.WRONG  # one failure after the lock, not four
    assert accounts.find("a@example.fi").locked_until is None


def test_a_new_password_lifts_the_lock_and_ends_old_sessions(accounts: AccountService) -> None:
    user, _ = accounts.add("a@example.fi", Role.ANALYST, password=PASSWORD, now=NOW)
    for attempt in range(3):
        accounts.authenticate("a@example.fi", f"wrong {attempt}", NOW)
    assert accounts.session_user(user.id, user.auth_epoch) is not None
    changed, generated = accounts.set_password(user.id, None)
    assert generated is not None
    assert accounts.session_user(user.id, user.auth_epoch) is None
    assert accounts.session_user(user.id, changed.auth_epoch) is not None
    assert accounts.authenticate("a@example.fi", generated, NOW).outcome is SignInOutcome.OK
    assert accounts.authenticate("a@example.fi", PASSWORD, NOW).outcome is SignInOutcome.WRONG


def test_unknown_emails_and_bad_input_are_just_wrong(accounts: AccountService) -> None:
    assert accounts.authenticate("nobody@example.fi", PASSWORD, NOW).outcome is (
        SignInOutcome.WRONG
    )
    assert accounts.authenticate("", "", NOW).outcome is SignInOutcome.WRONG
    assert accounts.authenticate("no email", PASSWORD, NOW).outcome is SignInOutcome.WRONG


def test_a_disabled_user_cannot_sign_in_and_loses_their_sessions(
    accounts: AccountService,
) -> None:
    user, _ = accounts.add("a@example.fi", Role.ANALYST, password=PASSWORD, now=NOW)
    disabled = accounts.set_disabled(user.id, True, NOW)
    assert disabled.disabled
    assert accounts.session_user(user.id, user.auth_epoch) is None
    assert accounts.authenticate("a@example.fi", PASSWORD, NOW).outcome is SignInOutcome.DISABLED
    # A wrong password on a disabled account says nothing about it being disabled.
    assert accounts.authenticate("a@example.fi", "nope nope nope", NOW).outcome is (
        SignInOutcome.WRONG
    )
    enabled = accounts.set_disabled(user.id, False, NOW)
    assert not enabled.disabled
    assert accounts.authenticate("a@example.fi", PASSWORD, NOW).outcome is SignInOutcome.OK
    with pytest.raises(NoSuchUser):
        accounts.set_disabled(999, True, NOW)


def test_changing_ones_own_password_needs_the_current_one(accounts: AccountService) -> None:
    user, _ = accounts.add("a@example.fi", Role.EDITOR, password=PASSWORD, now=NOW)
    with pytest.raises(WrongPassword):
        accounts.change_own_password(user.id, "not the password", "a brand new passphrase")
    with pytest.raises(WeakPassword):
        accounts.change_own_password(user.id, PASSWORD, "short")
    changed = accounts.change_own_password(user.id, PASSWORD, "a brand new passphrase")
    assert changed.auth_epoch == user.auth_epoch + 1
    assert accounts.authenticate("a@example.fi", "a brand new passphrase", NOW).outcome is (
        SignInOutcome.OK
    )


def test_each_role_sees_its_points_and_flows(accounts: AccountService) -> None:
    admin, _ = accounts.add("admin@example.fi", Role.ADMIN, password=PASSWORD, now=NOW)
    village, _ = accounts.add(
        "village@example.fi", Role.ANALYST, points=["village-library"], password=PASSWORD, now=NOW
    )
    nurse, _ = accounts.add(
        "nurse@example.fi", Role.EDITOR, points=["health-centre"], password=PASSWORD, now=NOW
    )
    nobody, _ = accounts.add("new@example.fi", Role.ANALYST, password=PASSWORD, now=NOW)

    assert accounts.visible_points(admin) == POINTS
    assert accounts.visible_points(village) == ("village-library",)
    assert accounts.visible_points(nurse) == ("health-centre",)
    assert accounts.visible_points(nobody) == ()
    assert [f.id for f in accounts.visible_flows(admin)] == ["health-fft", "library-visit"]
    assert [f.id for f in accounts.visible_flows(village)] == ["library-visit"]
    assert [f.id for f in accounts.visible_flows(nurse)] == ["health-fft"]
    assert accounts.visible_flows(nobody) == ()
    assert accounts.may_see_point(village, "village-library")
    assert not accounts.may_see_point(village, "main-library")
    assert not accounts.may_see_flow(nurse, "library-visit")

    granted = accounts.set_points(village.id, ["village-library", "main-library"])
    assert accounts.visible_points(granted) == ("main-library", "village-library")
    with pytest.raises(UnknownPoint):
        accounts.set_points(village.id, ["elsewhere"])
    with pytest.raises(AccountError, match="admins see every service point"):
        accounts.set_points(admin.id, ["main-library"])


def test_the_ui_language_is_kept_per_user(accounts: AccountService) -> None:
    user, _ = accounts.add("a@example.fi", Role.EDITOR, password=PASSWORD, now=NOW)
    assert user.ui_language is None
    accounts.set_ui_language(user.id, "sv")
    assert accounts.find("a@example.fi").ui_language == "sv"
    with pytest.raises(AccountError, match="unknown language 'de'"):
        accounts.set_ui_language(user.id, "de")


def test_a_hash_made_with_older_parameters_is_replaced_at_sign_in(
    accounts: AccountService, engine: Engine
) -> None:
    accounts.add("a@example.fi", Role.EDITOR, password=PASSWORD, now=NOW)
    [(_, _, old_hash)] = stored_users(engine)
    stronger = AccountService(
        engine,
        accounts.catalogue,
        hasher=PasswordHasher(time_cost=2, memory_cost=16, parallelism=1),
    )
    assert stronger.authenticate("a@example.fi", PASSWORD, NOW).outcome is SignInOutcome.OK
    [(_, _, new_hash)] = stored_users(engine)
    assert new_hash != old_hash and "m=16,t=2,p=1" in str(new_hash)
    assert stronger.authenticate("a@example.fi", PASSWORD, NOW).outcome is SignInOutcome.OK
