"""Shared by the staff page tests: the real app on the staff flows, users added through
the service layer, and signing in through the real form."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from palaute.app import create_app
from service.accounts import AccountService, Role, StaffUser
from tests.palaute.simulator_support import NOW, Clock
from tests.service.staff_support import CHEAP_ARGON2, write_staff_flows

PASSWORD = "correct horse battery"
ADMIN = "admin@example.fi"
MAIN_ANALYST = "main@example.fi"  # analyst of main-library only
VILLAGE_ANALYST = "village@example.fi"  # analyst of village-library only
NURSE = "nurse@example.fi"  # editor of health-centre


def make_staff_app(db_url: str, tmp_path: Path, clock: Clock | None = None, **config: Any) -> Flask:
    """The real app with the staff flows, cheap password hashing and http cookies."""
    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "FLOWS_DIR": write_staff_flows(tmp_path / "flows"),
            "CLOCK": clock or Clock(),
            "SESSION_COOKIE_SECURE": False,
            **CHEAP_ARGON2,
            **config,
        }
    )


def accounts(app: Flask) -> AccountService:
    service: AccountService = app.extensions["palaute"].accounts
    return service


def add_staff(app: Flask) -> dict[str, StaffUser]:
    """An admin, two library analysts (one library each) and a health-centre editor."""
    people = {
        ADMIN: (Role.ADMIN, []),
        MAIN_ANALYST: (Role.ANALYST, ["main-library"]),
        VILLAGE_ANALYST: (Role.ANALYST, ["village-library"]),
        NURSE: (Role.EDITOR, ["health-centre"]),
    }
    added = {}
    for email, (role, points) in people.items():
        user, _ = accounts(app).add(email, role, points=points, password=PASSWORD, now=NOW)
        added[email] = user
    return added


def english_client(app: Flask) -> FlaskClient:
    """A browser whose Accept-Language is English (unless a request says otherwise)."""
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def csrf_token(html: str) -> str:
    found = re.search(r'name="(?:[\w-]+-)?csrf_token" type="hidden" value="([^"]+)"', html)
    found = found or re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def post_form(
    client: FlaskClient, page: str, action: str, data: dict[str, Any], **kwargs: Any
) -> TestResponse:
    """Open ``page``, take its CSRF token, post ``data`` to ``action`` like a browser."""
    token = csrf_token(client.get(page, **kwargs).get_data(as_text=True))
    return client.post(action, data={"csrf_token": token, **data}, **kwargs)


def sign_in(
    client: FlaskClient, email: str, password: str = PASSWORD, **kwargs: Any
) -> TestResponse:
    return post_form(
        client,
        "/dashboard/sign-in",
        "/dashboard/sign-in",
        {"email": email, "password": password},
        **kwargs,
    )


def text(response: TestResponse) -> str:
    """The page's visible text, tags dropped and white space collapsed."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())
