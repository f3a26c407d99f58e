"""The staff pages through Flask's test client: who may open what, signing in and out,
the lockout and rate limits, CSRF, session cookies and idle time, languages, and the
admin's users page. What staff see is read from the pages; what is stored, from the
service layer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.accounts import Role, SignInOutcome
from tests.palaute.dashboard_support import (
    ADMIN,
    MAIN_ANALYST,
    NURSE,
    PASSWORD,
    VILLAGE_ANALYST,
    accounts,
    add_staff,
    csrf_token,
    english_client,
    make_staff_app,
    post_form,
    sign_in,
    text,
)
from tests.palaute.simulator_support import NOW, Clock, close_app

EN = {"Accept-Language": "en"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[Flask]:
    made = make_staff_app(db_url, tmp_path, clock)
    add_staff(made)
    yield made
    close_app(made)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return english_client(app)


def signed_in(app: Flask, email: str) -> FlaskClient:
    client = english_client(app)
    response = sign_in(client, email)
    assert response.status_code == 302, text(response)
    return client


def every_dashboard_url(app: Flask) -> list[tuple[str, str]]:
    """(method, url) of every staff page, with real values for the URL's parts."""
    values = {
        "point": "main-library",
        "user_id": "1",
        "flow_id": "library-visit",
        "run_id": "1",
    }
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("dashboard."):
            continue
        url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, url))
    return found


# --- access ----------------------------------------------------------------------------


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_every_staff_page_needs_a_signed_in_user(app: Flask, client: FlaskClient) -> None:
    urls = every_dashboard_url(app)
    assert len(urls) >= 14
    token = csrf_token(client.get("/dashboard/sign-in").get_data(as_text=True))
    for method, url in urls:
        if url in ("/dashboard/sign-in", "/dashboard/language"):
            continue
        response = client.open(url, method=method, data={"csrf_token": token})
        assert response.status_code == 302, (method, url)
        assert response.headers["Location"].startswith("/dashboard/sign-in?next="), (method, url)


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_every_form_needs_its_csrf_token(app: Flask) -> None:
    client = signed_in(app, ADMIN)
    for method, url in every_dashboard_url(app):
        if method != "POST":
            continue
        response = client.post(url, data={"email": ADMIN, "password": PASSWORD, "lang": "sv"})
        assert response.status_code == 400, url
        assert "The form could not be sent" in text(response), url
    assert client.get("/dashboard/account").status_code == 200  # still signed in, unchanged
    assert accounts(app).find(ADMIN).ui_language is None


def test_an_analyst_sees_only_their_own_library(app: Flask) -> None:
    village = signed_in(app, VILLAGE_ANALYST)
    overview = text(village.get("/dashboard/"))
    assert "Library visit library-visit" in overview
    assert "village-library" in overview
    assert "main-library" not in overview
    assert "health" not in overview.lower()

    own = village.get("/dashboard/points/village-library")
    assert own.status_code == 200
    assert "Surveys at this service point Survey Languages" in text(own)
    assert "village_library" in text(own)  # its start code
    assert "main_library" not in text(own)

    other = village.get("/dashboard/points/main-library")
    assert other.status_code == 403
    assert "not yours" in text(other)
    assert "main_library" not in other.get_data(as_text=True)
    assert village.get("/dashboard/points/health-centre").status_code == 403
    assert village.get("/dashboard/points/nowhere").status_code == 404
    assert village.get("/dashboard/users").status_code == 403
    assert village.get("/dashboard/users/1").status_code == 403
    assert village.get("/dashboard/users/new").status_code == 403
    assert post_form(
        village, "/dashboard/account", "/dashboard/users/1/disable", {}
    ).status_code == (403)
    assert not accounts(app).find(ADMIN).disabled


def test_an_admin_sees_every_flow_and_point(app: Flask) -> None:
    admin = signed_in(app, ADMIN)
    overview = text(admin.get("/dashboard/"))
    for name in ("health-centre", "main-library", "village-library", "Health centre feedback"):
        assert name in overview
    assert "You see the feedback of 3 service points." in overview
    nurse = signed_in(app, NURSE)
    assert "You see the feedback of 1 service point." in text(nurse.get("/dashboard/"))
    for point in ("health-centre", "main-library", "village-library"):
        assert admin.get(f"/dashboard/points/{point}").status_code == 200


def test_a_user_with_no_points_is_told_to_ask_for_them(app: Flask) -> None:
    accounts(app).add("new@example.fi", Role.ANALYST, password=PASSWORD, now=NOW)
    page = text(signed_in(app, "new@example.fi").get("/dashboard/"))
    assert "No service points have been granted to you yet." in page
    assert "library" not in page


# --- signing in and out ----------------------------------------------------------------


def test_sign_in_goes_back_to_the_page_asked_for_and_sign_out_ends_the_session(
    app: Flask, client: FlaskClient
) -> None:
    asked = client.get("/dashboard/points/village-library")
    assert asked.status_code == 302
    page = client.get(asked.headers["Location"], headers=EN)
    assert "Sign in to see this page." in text(page)
    response = client.post(
        "/dashboard/sign-in",
        data={
            "csrf_token": csrf_token(page.get_data(as_text=True)),
            "email": "VILLAGE@example.fi",
            "password": PASSWORD,
            "next": "/dashboard/points/village-library",
        },
    )
    assert response.headers["Location"] == "/dashboard/points/village-library"
    assert accounts(app).find(VILLAGE_ANALYST).last_login_at == NOW

    confirm = client.get("/dashboard/sign-out")
    assert "Sign out on this browser?" in text(confirm)
    out = client.post(
        "/dashboard/sign-out", data={"csrf_token": csrf_token(confirm.get_data(as_text=True))}
    )
    assert out.headers["Location"] == "/dashboard/sign-in"
    assert "You have signed out." in text(client.get("/dashboard/sign-in", headers=EN))
    assert client.get("/dashboard/").status_code == 302


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/", "/simulator", "/\\evil.example", "javascript:x"],
)
def test_sign_in_never_sends_anyone_off_the_staff_pages(client: FlaskClient, target: str) -> None:
    response = post_form(
        client,
        "/dashboard/sign-in",
        "/dashboard/sign-in",
        {"email": ADMIN, "password": PASSWORD, "next": target},
    )
    assert response.headers["Location"] == "/dashboard/"


def test_a_wrong_password_says_only_that(client: FlaskClient) -> None:
    for email in (ADMIN, "nobody@example.fi"):
        response = sign_in(client, email, "not the password", headers=EN)
        assert response.status_code == 200
        page = text(response)
        assert "There is a problem The email address or the password is wrong." in page
        assert response.get_data(as_text=True).count('aria-invalid="true"') == 1
    assert client.get("/dashboard/").status_code == 302


def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    for _ in range(4):
        assert "is wrong" in text(sign_in(client, MAIN_ANALYST, "guess guess guess", headers=EN))
    locked = text(sign_in(client, MAIN_ANALYST, "guess guess guess", headers=EN))
    # 09:00 UTC is 12:00 in Helsinki; locked for 15 minutes.
    assert "Too many failed sign-ins: this account is locked until 12:15 PM." in locked
    right = sign_in(client, MAIN_ANALYST, headers=EN)
    assert "locked until 12:15 PM" in text(right)
    assert client.get("/dashboard/").status_code == 302
    # The admin sees the lock on the users page.
    assert "Locked until" in text(signed_in(app, ADMIN).get("/dashboard/users", headers=EN))

    clock.advance(timedelta(minutes=15, seconds=1))
    assert sign_in(client, MAIN_ANALYST).status_code == 302
    assert client.get("/dashboard/").status_code == 200


def test_a_disabled_account_is_told_so_only_with_the_right_password(
    app: Flask, client: FlaskClient
) -> None:
    user = accounts(app).find(NURSE)
    session = signed_in(app, NURSE)
    accounts(app).set_disabled(user.id, True, NOW)
    assert session.get("/dashboard/").status_code == 302  # the open session ended
    assert "is wrong" in text(sign_in(client, NURSE, "wrong password!!", headers=EN))
    assert "This account has been disabled." in text(sign_in(client, NURSE, headers=EN))


def test_sign_in_is_rate_limited_per_account_and_per_address(db_url: str, tmp_path: Path) -> None:
    app = make_staff_app(
        db_url,
        tmp_path,
        LOGIN_RATE_LIMIT_ACCOUNT="3 per minute",
        LOGIN_RATE_LIMIT_ADDRESS="6 per minute",
    )
    try:
        add_staff(app)
        one = english_client(app)
        for _ in range(3):
            assert sign_in(one, ADMIN, "wrong wrong wrong").status_code == 200
        limited = sign_in(one, ADMIN, headers=EN)  # even the right password waits
        assert limited.status_code == 429
        assert "Too many sign-in attempts. Wait a minute and try again." in text(limited)
        # Another account from the same address: every attempt so far counted for the
        # address (the refused one too), which has 2 left.
        assert sign_in(one, NURSE).status_code == 302
        other = english_client(app)
        assert sign_in(other, MAIN_ANALYST).status_code == 302
        assert sign_in(english_client(app), VILLAGE_ANALYST).status_code == 429
        # Another address is counted apart (the account limit still holds for ADMIN).
        elsewhere = {"environ_base": {"REMOTE_ADDR": "192.0.2.7"}}
        far = english_client(app)
        assert sign_in(far, VILLAGE_ANALYST, **elsewhere).status_code == 302
        assert sign_in(english_client(app), ADMIN, **elsewhere).status_code == 429
        # Only the sign-in POST is limited: pages and the form still open.
        assert english_client(app).get("/dashboard/sign-in").status_code == 200
        assert far.get("/dashboard/").status_code == 200
    finally:
        close_app(app)


# --- sessions --------------------------------------------------------------------------


def test_the_session_cookie_is_secure_httponly_and_lax_by_default(
    db_url: str, tmp_path: Path
) -> None:
    app = make_staff_app(db_url, tmp_path, SESSION_COOKIE_SECURE=True)
    try:
        add_staff(app)
        client = english_client(app)
        page = client.get("/dashboard/sign-in", base_url="https://palaute.example")
        cookie = page.headers["Set-Cookie"]
        assert re.search(r"^session=.*; Secure; HttpOnly; Path=/; SameSite=Lax$", cookie), cookie
        signed = client.post(
            "/dashboard/sign-in",
            base_url="https://palaute.example",
            headers={"Referer": "https://palaute.example/dashboard/sign-in"},
            data={
                "csrf_token": csrf_token(page.get_data(as_text=True)),
                "email": ADMIN,
                "password": PASSWORD,
            },
        )
        assert signed.status_code == 302
        cookie = signed.headers["Set-Cookie"]
        assert "Secure; HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Expires=" in cookie  # lives for the idle time, refreshed by each request
    finally:
        close_app(app)


def test_a_session_ends_after_the_idle_time(app: Flask, clock: Clock) -> None:
    client = signed_in(app, ADMIN)
    clock.advance(timedelta(minutes=29))
    assert client.get("/dashboard/").status_code == 200  # activity: the idle time restarts
    clock.advance(timedelta(minutes=29))
    assert client.get("/dashboard/users").status_code == 200
    clock.advance(timedelta(minutes=30, seconds=1))
    ended = client.get("/dashboard/users")
    assert ended.status_code == 302
    assert ended.headers["Location"] == "/dashboard/sign-in?next=/dashboard/users"
    page = text(client.get("/dashboard/sign-in", headers=EN))
    assert "You were signed out after a while without activity." in page
    assert client.get("/dashboard/").status_code == 302


def test_a_new_password_ends_the_users_other_sessions(app: Flask) -> None:
    phone = signed_in(app, MAIN_ANALYST)
    laptop = signed_in(app, MAIN_ANALYST)
    changed = post_form(
        laptop,
        "/dashboard/account",
        "/dashboard/account/password",
        {"pw-current": PASSWORD, "pw-new": "a brand new passphrase",
         "pw-confirm": "a brand new passphrase"},
        headers=EN,
    )  # fmt: skip
    assert changed.headers["Location"] == "/dashboard/account"
    assert "Your password is changed." in text(laptop.get("/dashboard/account", headers=EN))
    assert phone.get("/dashboard/").status_code == 302
    outcome = accounts(app).authenticate(MAIN_ANALYST, "a brand new passphrase", NOW).outcome
    assert outcome is SignInOutcome.OK


@pytest.mark.parametrize(
    ("current", "new", "confirm", "message"),
    [
        ("wrong password", "a brand new passphrase", "a brand new passphrase",
         "The current password is wrong."),
        (PASSWORD, "short", "short", "The password is too short: use at least 12 characters."),
        (PASSWORD, "a brand new passphrase", "another passphrase",
         "The two new passwords are not the same."),
        (PASSWORD, "", "", "Enter a new password."),
        (PASSWORD, MAIN_ANALYST, MAIN_ANALYST, "The password must not be the email address."),
    ],
)  # fmt: skip
def test_a_password_change_that_fails_says_why(
    app: Flask, current: str, new: str, confirm: str, message: str
) -> None:
    client = signed_in(app, MAIN_ANALYST)
    response = post_form(
        client,
        "/dashboard/account",
        "/dashboard/account/password",
        {"pw-current": current, "pw-new": new, "pw-confirm": confirm},
        headers=EN,
    )
    assert response.status_code == 400
    assert f"There is a problem {message}" in text(response)
    assert accounts(app).authenticate(MAIN_ANALYST, PASSWORD, NOW).outcome is SignInOutcome.OK


# --- languages -------------------------------------------------------------------------


def test_the_language_follows_the_users_setting_else_accept_language(app: Flask) -> None:
    client = english_client(app)
    swedish = client.get("/dashboard/sign-in", headers={"Accept-Language": "sv-FI,sv;q=0.9"})
    assert '<html lang="sv">' in swedish.get_data(as_text=True)
    assert "Logga in" in text(swedish)
    assert "Kirjaudu sisään" in text(
        client.get("/dashboard/sign-in", headers={"Accept-Language": "de"})
    )

    # Chosen before signing in: kept on this browser, then saved on the account.
    switched = post_form(
        client, "/dashboard/sign-in", "/dashboard/language",
        {"lang": "en", "next": "/dashboard/sign-in"},
    )  # fmt: skip
    assert switched.headers["Location"] == "/dashboard/sign-in"
    page = client.get("/dashboard/sign-in", headers={"Accept-Language": "sv"})
    assert '<html lang="en">' in page.get_data(as_text=True)
    sign_in(client, NURSE)
    assert accounts(app).find(NURSE).ui_language == "en"

    # The account's language wins over the browser's, on any browser.
    other = english_client(app)
    sign_in(other, NURSE, headers={"Accept-Language": "fi"})
    assert "Overview" in text(other.get("/dashboard/", headers={"Accept-Language": "fi"}))
    saved = post_form(
        other, "/dashboard/account", "/dashboard/account/language", {"ui-language": "sv"}
    )
    assert saved.headers["Location"] == "/dashboard/account"
    assert accounts(app).find(NURSE).ui_language == "sv"
    account = text(other.get("/dashboard/account", headers={"Accept-Language": "en"}))
    assert "Språket är sparat." in account
    assert "Ditt konto" in account


def test_the_language_switch_names_each_language_in_itself(client: FlaskClient) -> None:
    html = client.get("/dashboard/sign-in", headers={"Accept-Language": "fi"}).get_data(
        as_text=True
    )
    buttons = re.findall(
        r'<button type="submit" name="lang" value="(\w+)" lang="(\w+)"([^>]*)>([^<]+)<', html
    )
    assert [(value, lang, name) for value, lang, _, name in buttons] == [
        ("fi", "fi", "suomi"), ("sv", "sv", "svenska"), ("en", "en", "English"),
    ]  # fmt: skip
    assert ['aria-current="true"' in extra for _, _, extra, _ in buttons] == [True, False, False]


# --- the admin's users page ------------------------------------------------------------


def test_an_admin_adds_a_user_who_can_then_sign_in(app: Flask) -> None:
    admin = signed_in(app, ADMIN)
    added = post_form(
        admin,
        "/dashboard/users/new",
        "/dashboard/users/new",
        {"email": "Kaisa@Example.fi", "role": "analyst",
         "points": ["main-library", "village-library"]},
        headers=EN,
    )  # fmt: skip
    assert added.status_code == 200
    assert "User added The password of kaisa@example.fi is:" in text(added)
    password = re.search(r'<code id="new-password">([^<]+)</code>', added.get_data(as_text=True))
    assert password is not None
    user = accounts(app).find("kaisa@example.fi")
    assert (user.role, user.points) == (
        Role.ANALYST,
        frozenset({"main-library", "village-library"}),
    )
    kaisa = english_client(app)
    assert sign_in(kaisa, "kaisa@example.fi", password.group(1)).status_code == 302
    listed = text(admin.get("/dashboard/users", headers=EN))
    assert "kaisa@example.fi Analyst main-library, village-library Active" in listed


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"email": ADMIN.upper(), "role": "editor"},
         "A user with this email address exists already."),
        ({"email": "no-at-sign", "role": "editor"}, "Enter an email address like name@example.fi."),
        ({"email": "x@example.fi"}, "Choose a role."),
        ({"email": "x@example.fi", "role": "boss"}, "Not a valid choice"),
        ({"email": "x@example.fi", "role": "analyst", "points": ["elsewhere"]},
         "is not a valid choice"),
        ({"email": "x@example.fi", "role": "admin", "points": ["main-library"]},
         "Administrators see every service point: choose none."),
    ],
)  # fmt: skip
def test_adding_a_user_that_fails_says_why_and_stores_nothing(
    app: Flask, form: dict[str, object], message: str
) -> None:
    admin = signed_in(app, ADMIN)
    before = len(accounts(app).all_users())
    response = post_form(admin, "/dashboard/users/new", "/dashboard/users/new", form, headers=EN)
    assert response.status_code == 400
    assert "There is a problem" in text(response) and message in text(response)
    assert len(accounts(app).all_users()) == before


def test_an_admin_grants_points_disables_and_resets_a_password(app: Flask) -> None:
    admin = signed_in(app, ADMIN)
    village = signed_in(app, VILLAGE_ANALYST)
    user = accounts(app).find(VILLAGE_ANALYST)
    page = f"/dashboard/users/{user.id}"

    granted = post_form(
        admin, page, f"{page}/points", {"points-points": ["village-library", "main-library"]}
    )
    assert granted.headers["Location"] == page
    assert village.get("/dashboard/points/main-library").status_code == 200

    reset = post_form(admin, page, f"{page}/password", {}, headers=EN)
    new_password = re.search(
        r'<code id="new-password">([^<]+)</code>', reset.get_data(as_text=True)
    )
    assert new_password is not None
    assert village.get("/dashboard/").status_code == 302  # the old session ended
    assert sign_in(village, VILLAGE_ANALYST, new_password.group(1)).status_code == 302

    disabled = post_form(admin, page, f"{page}/disable", {})
    assert disabled.headers["Location"] == page
    assert "The account is disabled and its sessions ended." in text(admin.get(page, headers=EN))
    assert village.get("/dashboard/").status_code == 302
    assert accounts(app).find(VILLAGE_ANALYST).disabled
    post_form(admin, page, f"{page}/enable", {})
    assert not accounts(app).find(VILLAGE_ANALYST).disabled

    me = accounts(app).find(ADMIN)
    refused = post_form(admin, f"/dashboard/users/{me.id}", f"/dashboard/users/{me.id}/disable", {})
    assert refused.status_code == 302
    assert not accounts(app).find(ADMIN).disabled
    assert admin.get("/dashboard/users/999").status_code == 404
