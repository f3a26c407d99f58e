"""Staff accounts: adding and disabling users, passwords, sign-in with lockout, and which
service points (and so which flows) each user may see.

Roles:

- ``admin``: every flow and service point, and the users;
- ``editor``: flows and results of the service points granted to them;
- ``analyst``: results and comments of the service points granted to them.

Nobody but an admin sees a service point that was not granted to them. Points are the
``service_points`` the flows name; a grant of a point no flow names any more is kept
but shows nothing.

Passwords are hashed with argon2id (argon2-cffi); a hash made with older parameters is
replaced at the next successful sign-in. After ``LockoutPolicy.attempts`` failed
sign-ins in a row an account is locked for ``LockoutPolicy.minutes``; a new password
(``set_password``) lifts the lock. Changing a password or disabling an account ends
every session made before (``auth_epoch``).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from difflib import get_close_matches
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine

from bot.catalogue import Catalogue
from bot.flow import Flow
from storage import accounts as store
from storage.db import read_only, transaction

log = logging.getLogger(__name__)

UI_LANGUAGES = ("fi", "sv", "en")
PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 256  # argon2 hashes any length; this bounds the work per attempt
EMAIL_MAX_LENGTH = 254
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


class Role(StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    ANALYST = "analyst"


class AccountError(ValueError):
    """A request the accounts cannot carry out; the message says what to do."""


class BadEmail(AccountError):
    pass


class EmailInUse(AccountError):
    pass


class UnknownPoint(AccountError):
    pass


class WeakPassword(AccountError):
    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # short | long | email


class WrongPassword(AccountError):
    pass


class NoSuchUser(AccountError):
    pass


class SignInOutcome(StrEnum):
    OK = "ok"
    WRONG = "wrong"  # unknown email or wrong password (told apart to nobody)
    LOCKED = "locked"  # too many failures in a row: wait until ``locked_until``
    DISABLED = "disabled"  # right password, but an admin disabled the account


@dataclass(frozen=True)
class StaffUser:
    id: int
    email: str
    role: Role
    points: frozenset[str]  # granted (admins see every point whatever this holds)
    ui_language: str | None
    disabled: bool
    locked_until: datetime | None
    created_at: datetime
    last_login_at: datetime | None
    auth_epoch: int

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True)
class SignIn:
    outcome: SignInOutcome
    user: StaffUser | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True)
class LockoutPolicy:
    attempts: int = 5
    minutes: float = 15.0


def normalise_email(email: str) -> str:
    """The stored form of an email address (trimmed, lower-case); BadEmail if it is none."""
    value = email.strip().lower()
    if not value or len(value) > EMAIL_MAX_LENGTH or not _EMAIL.fullmatch(value):
        raise BadEmail(f"{email.strip()!r} is not an email address (write e.g. name@example.fi)")
    return value


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise AccountError(f"unknown role {value!r}: use one of {roles}") from None


def check_password(password: str, email: str = "") -> None:
    """WeakPassword unless ``password`` is long enough and not the email address."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise WeakPassword(
            f"the password is too short ({len(password)} characters): use at least "
            f"{PASSWORD_MIN_LENGTH}, e.g. a few unrelated words",
            "short",
        )
    if len(password) > PASSWORD_MAX_LENGTH:
        raise WeakPassword(
            f"the password is too long: at most {PASSWORD_MAX_LENGTH} characters", "long"
        )
    if email and password.strip().lower() == email.strip().lower():
        raise WeakPassword("the password must not be the email address", "email")


def generate_password() -> str:
    """A random password to hand over once (16 URL-safe characters, 96 bits)."""
    return secrets.token_urlsafe(12)


def _user(record: store.StaffUserRecord) -> StaffUser:
    return StaffUser(
        id=record.id,
        email=record.email,
        role=Role(record.role),
        points=record.points,
        ui_language=record.ui_language,
        disabled=record.disabled_at is not None,
        locked_until=record.locked_until,
        created_at=record.created_at,
        last_login_at=record.last_login_at,
        auth_epoch=record.auth_epoch,
    )


class AccountService:
    """Use cases of staff accounts on one database and one flow catalogue."""

    def __init__(
        self,
        db: Engine,
        catalogue: Catalogue,
        *,
        hasher: PasswordHasher | None = None,
        lockout: LockoutPolicy | None = None,
    ) -> None:
        self.db = db
        self.catalogue = catalogue
        self.hasher = hasher or PasswordHasher()
        self.lockout = lockout or LockoutPolicy()
        self._dummy_hash: str | None = None

    # --- service points -------------------------------------------------------------------

    def all_points(self) -> tuple[str, ...]:
        """Every service point a flow names, sorted."""
        return tuple(sorted({p for flow in self.catalogue.all() for p in flow.service_points}))

    def check_points(self, points: Iterable[str]) -> frozenset[str]:
        """The points, each one a flow names; UnknownPoint (with a hint) otherwise."""
        known = self.all_points()
        wanted = frozenset(p.strip() for p in points if p.strip())
        for point in sorted(wanted):
            if point not in known:
                close = get_close_matches(point, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise UnknownPoint(
                    f"unknown service point {point!r}: {hint}the flows name "
                    + (", ".join(known) if known else "no service points")
                )
        return wanted

    def visible_points(self, user: StaffUser) -> tuple[str, ...]:
        """The service points ``user`` may see: every one for admins, else their grants."""
        known = self.all_points()
        if user.is_admin:
            return known
        return tuple(p for p in known if p in user.points)

    def may_see_point(self, user: StaffUser, point: str) -> bool:
        return point in self.visible_points(user)

    def visible_flows(self, user: StaffUser) -> tuple[Flow, ...]:
        """Flows with a service point ``user`` may see (admins: every flow)."""
        flows = sorted(self.catalogue.all(), key=lambda f: f.id)
        if user.is_admin:
            return tuple(flows)
        return tuple(f for f in flows if set(f.service_points) & user.points)

    def may_see_flow(self, user: StaffUser, flow_id: str) -> bool:
        return any(f.id == flow_id for f in self.visible_flows(user))

    # --- users ----------------------------------------------------------------------------

    def add(
        self,
        email: str,
        role: Role,
        *,
        points: Iterable[str] = (),
        password: str | None,
        now: datetime,
    ) -> tuple[StaffUser, str | None]:
        """Add a user; returns it and the generated password (None when one was given)."""
        address = normalise_email(email)
        granted = self.check_points(points)
        if role is Role.ADMIN and granted:
            raise AccountError(
                "admins see every service point: give points to editors and analysts only"
            )
        generated = None
        if password is None:
            password = generated = generate_password()
        check_password(password, address)
        password_hash = self.hasher.hash(password)
        try:
            with transaction(self.db) as session:
                user_id = store.add_user(
                    session,
                    email=address,
                    password_hash=password_hash,
                    role=role.value,
                    points=granted,
                    now=now,
                )
                record = store.user_by_id(session, user_id)
        except store.EmailTaken:
            raise EmailInUse(f"a user {address} exists already") from None
        assert record is not None
        log.info("staff user %s added (%s)", user_id, role.value)
        return _user(record), generated

    def all_users(self) -> list[StaffUser]:
        with transaction(read_only(self.db)) as session:
            return [_user(r) for r in store.list_users(session)]

    def get(self, user_id: int) -> StaffUser | None:
        with transaction(read_only(self.db)) as session:
            record = store.user_by_id(session, user_id)
        return _user(record) if record is not None else None

    def find(self, email: str) -> StaffUser:
        """The user with ``email``; NoSuchUser otherwise."""
        address = normalise_email(email)
        with transaction(read_only(self.db)) as session:
            record = store.user_by_email(session, address)
        if record is None:
            raise NoSuchUser(f"no user {address} (palaute users list shows them all)")
        return _user(record)

    def session_user(self, user_id: int, epoch: int) -> StaffUser | None:
        """The signed-in user of a session, unless disabled or signed out by a new password."""
        user = self.get(user_id)
        if user is None or user.disabled or user.auth_epoch != epoch:
            return None
        return user

    def set_disabled(self, user_id: int, disabled: bool, now: datetime) -> StaffUser:
        with transaction(self.db) as session:
            if not store.set_disabled(session, user_id, now if disabled else None):
                raise NoSuchUser(f"no user with id {user_id}")
            record = store.user_by_id(session, user_id)
        assert record is not None
        log.info("staff user %s %s", user_id, "disabled" if disabled else "enabled")
        return _user(record)

    def set_points(self, user_id: int, points: Iterable[str]) -> StaffUser:
        granted = self.check_points(points)
        with transaction(self.db) as session:
            record = store.user_by_id(session, user_id)
            if record is None:
                raise NoSuchUser(f"no user with id {user_id}")
            if record.role == Role.ADMIN and granted:
                raise AccountError(
                    "admins see every service point: give points to editors and analysts only"
                )
            store.set_points(session, user_id, granted)
            record = store.user_by_id(session, user_id)
        assert record is not None
        return _user(record)

    def set_password(self, user_id: int, password: str | None) -> tuple[StaffUser, str | None]:
        """A new password (generated when None, and returned); lifts a lockout and ends
        the user's sessions."""
        user = self.get(user_id)
        if user is None:
            raise NoSuchUser(f"no user with id {user_id}")
        generated = None
        if password is None:
            password = generated = generate_password()
        check_password(password, user.email)
        password_hash = self.hasher.hash(password)
        with transaction(self.db) as session:
            store.set_password_hash(session, user_id, password_hash)
            record = store.user_by_id(session, user_id)
        assert record is not None
        log.info("staff user %s: password set", user_id)
        return _user(record), generated

    def change_own_password(self, user_id: int, current: str, new: str) -> StaffUser:
        """The user's own change: the current password must be right."""
        with transaction(read_only(self.db)) as session:
            record = store.user_by_id(session, user_id)
        if record is None:
            raise NoSuchUser(f"no user with id {user_id}")
        if not self._verify(record.password_hash, current):
            raise WrongPassword("the current password is not right")
        user, _ = self.set_password(user_id, new)
        return user

    def set_ui_language(self, user_id: int, language: str | None) -> None:
        if language is not None and language not in UI_LANGUAGES:
            raise AccountError(f"unknown language {language!r}: use one of fi, sv, en")
        with transaction(self.db) as session:
            store.set_ui_language(session, user_id, language)

    # --- signing in -----------------------------------------------------------------------

    def authenticate(self, email: str, password: str, now: datetime) -> SignIn:
        """Check a sign-in. Wrong attempts count towards the lockout; a locked account is
        refused without looking at the password."""
        try:
            address = normalise_email(email)
        except BadEmail:
            address = ""
        record = None
        if address:
            with transaction(read_only(self.db)) as session:
                record = store.user_by_email(session, address)
        if record is None:
            self._verify(self._dummy(), password)  # the same work as for a real user
            return SignIn(SignInOutcome.WRONG)
        if record.locked_until is not None and record.locked_until > now:
            return SignIn(SignInOutcome.LOCKED, locked_until=record.locked_until)
        if not self._verify(record.password_hash, password):
            lock_until = now + timedelta(minutes=self.lockout.minutes)
            with transaction(self.db) as session:
                failures, locked_until = store.record_failure(
                    session, record.id, now, limit=self.lockout.attempts, lock_until=lock_until
                )
            if locked_until is not None and locked_until > now:
                log.warning(
                    "staff user %s locked until %s after %d failed sign-ins",
                    record.id,
                    locked_until.isoformat(),
                    failures,
                )
                return SignIn(SignInOutcome.LOCKED, locked_until=locked_until)
            return SignIn(SignInOutcome.WRONG)
        if record.disabled_at is not None:
            return SignIn(SignInOutcome.DISABLED)
        with transaction(self.db) as session:
            store.record_success(session, record.id, now)
            if self.hasher.check_needs_rehash(record.password_hash):
                store.rehash(session, record.id, record.password_hash, self.hasher.hash(password))
            refreshed = store.user_by_id(session, record.id)
        assert refreshed is not None
        return SignIn(SignInOutcome.OK, user=_user(refreshed))

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(password_hash, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash
