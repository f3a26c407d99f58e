"""The staff pages in headless Chromium: signing in (wrong, locked, right), keyboard-only
use, the language switch, an analyst kept out of the other library, signing out, and
axe-core on every page (zero violations).

Uses Debian's chromium (/usr/bin/chromium), never a downloaded browser. The app runs in
a thread on a free loopback port over http, as with ``make run`` (Secure cookies off).

Screenshots: ``PALAUTE_SCREENSHOTS=docs/screenshots`` saves each page at desktop
(1280x800) and phone (390x844) width (``make screenshots``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import Browser, Page, expect

from tests.palaute.dashboard_support import (
    ADMIN,
    MAIN_ANALYST,
    PASSWORD,
    VILLAGE_ANALYST,
    accounts,
    add_staff,
    make_staff_app,
)
from tests.palaute.simulator_support import Clock, close_app

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True),
]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = os.environ.get("PALAUTE_SCREENSHOTS", "")
AXE = Axe()


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    made = make_staff_app(db_url, tmp_path, Clock())
    add_staff(made)
    yield made
    close_app(made)


def new_page(browser: Browser, locale: str = "en-GB", viewport: dict[str, int] = DESKTOP) -> Page:
    context = browser.new_context(viewport=viewport, locale=locale)  # type: ignore[arg-type]
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened = new_page(browser)
    yield opened
    opened.context.close()


def no_axe_violations(page: Page) -> None:
    results = AXE.run(page)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def screenshot(page: Page, name: str) -> None:
    """Save the page at desktop and phone width (only when PALAUTE_SCREENSHOTS is set)."""
    if not SCREENSHOTS:
        return
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)  # type: ignore[arg-type]
        page.screenshot(path=str(folder / f"dashboard-{name}-{label}.png"), full_page=True)
    if size is not None:
        page.set_viewport_size(size)


def fits_without_sideways_scrolling(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    assert width <= viewport, f"{page.url} scrolls sideways ({width}px > {viewport}px)"


def sign_in_with(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_wrong_then_right_every_page_then_sign_out(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/dashboard/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.get_by_role("status")).to_have_text("Sign in to see this page.")
    no_axe_violations(page)
    screenshot(page, "sign-in")

    sign_in_with(page, ADMIN, "not the password")
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("There is a problem")
    expect(summary.get_by_role("link")).to_have_text("The email address or the password is wrong.")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_title("Error: Sign in – Palaute")
    no_axe_violations(page)
    screenshot(page, "sign-in-error")

    sign_in_with(page, ADMIN, PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    expect(page.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    no_axe_violations(page)
    screenshot(page, "overview")

    page.get_by_role("link", name="main-library").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Service point main-library")
    no_axe_violations(page)
    screenshot(page, "point")

    page.get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Users")
    expect(page.get_by_role("row")).to_have_count(5)
    no_axe_violations(page)
    screenshot(page, "users")

    page.get_by_role("link", name="Add a user").click()
    page.get_by_role("button", name="Add user").click()  # nothing filled in
    expect(page.get_by_role("alert")).to_contain_text("Enter an email address.")
    no_axe_violations(page)
    page.get_by_label("Email address").fill("kaisa@example.fi")
    page.get_by_role("radio", name="Analyst: results and comments of their service points").check()
    page.get_by_role("checkbox", name="village-library").check()
    screenshot(page, "add-user")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("User added")
    assert len(page.locator("#new-password").inner_text()) >= 16
    no_axe_violations(page)

    page.get_by_role("link", name="Back to the user").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("kaisa@example.fi")
    expect(page.get_by_role("checkbox", name="village-library")).to_be_checked()
    no_axe_violations(page)
    screenshot(page, "user")

    page.get_by_role("link", name="Your account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    no_axe_violations(page)
    screenshot(page, "account")

    page.goto(f"{base_url}/dashboard/sign-out")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign out")
    no_axe_violations(page)
    screenshot(page, "sign-out")

    page.get_by_role("main").get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    page.goto(f"{base_url}/dashboard/users")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")


def test_a_locked_out_sign_in(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/dashboard/sign-in")
    for _ in range(5):
        sign_in_with(page, MAIN_ANALYST, "guess guess guess")
    expect(page.get_by_role("alert")).to_contain_text(
        "Too many failed sign-ins: this account is locked until"
    )
    sign_in_with(page, MAIN_ANALYST, PASSWORD)  # the right password, too late
    expect(page.get_by_role("alert")).to_contain_text("this account is locked until")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    no_axe_violations(page)
    screenshot(page, "sign-in-locked")


def test_keyboard_only_sign_in_and_navigation(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/dashboard/sign-in")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    focus = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth, s.outlineColor]; })()"
    )
    # A 3px near-black outline (19:1 on the white and light grey backgrounds).
    assert focus == ["solid", "3px", "rgb(11, 12, 12)"]
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    order = []
    for _ in range(3):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.name"))
    assert order == ["email", "password", ""]  # then the Sign in button
    expect(page.get_by_role("button", name="Sign in")).to_be_focused()
    page.get_by_label("Email address").focus()
    page.keyboard.type(ADMIN)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")

    # From the top: skip link, the organisation, three languages, the navigation, sign out.
    page.locator("body").focus()
    names = []
    for _ in range(10):
        page.keyboard.press("Tab")
        names.append(
            page.evaluate("document.activeElement.textContent.trim().replace(/\\s+/g, ' ')")
        )
    assert names == [
        "Skip to main content", "Palaute Feedback for staff", "suomi", "svenska", "English",
        "Overview", "Follow-ups", "Users", "Your account", "Sign out",
    ]  # fmt: skip
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # "Your account"
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    expect(page.get_by_role("link", name="Your account")).to_have_attribute("aria-current", "page")


def test_the_language_switch(page: Page, base_url: str, app: Flask) -> None:
    page.goto(f"{base_url}/dashboard/sign-in")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_role("button", name="svenska").click()
    expect(page.locator("html")).to_have_attribute("lang", "sv")
    expect(page.get_by_role("heading", level=1)).to_have_text("Logga in")
    expect(page.get_by_role("button", name="svenska")).to_have_attribute("aria-current", "true")
    expect(page.get_by_role("button", name="suomi")).to_have_attribute("lang", "fi")
    no_axe_violations(page)

    page.get_by_label("E-postadress").fill(VILLAGE_ANALYST)
    page.get_by_label("Lösenord").fill(PASSWORD)
    page.get_by_role("button", name="Logga in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Översikt")
    assert accounts(app).find(VILLAGE_ANALYST).ui_language == "sv"
    page.get_by_role("button", name="suomi").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Yleiskatsaus")
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    no_axe_violations(page)
    assert accounts(app).find(VILLAGE_ANALYST).ui_language == "fi"


def test_an_analyst_cannot_open_the_other_librarys_page(browser: Browser, base_url: str) -> None:
    page = new_page(browser, viewport=PHONE)
    try:
        page.goto(f"{base_url}/dashboard/sign-in")
        sign_in_with(page, VILLAGE_ANALYST, PASSWORD)
        expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
        expect(page.get_by_role("link", name="village-library")).to_have_count(1)
        expect(page.get_by_text("main-library")).to_have_count(0)
        expect(page.get_by_role("link", name="Users")).to_have_count(0)
        fits_without_sideways_scrolling(page)

        own = page.goto(f"{base_url}/dashboard/points/village-library")
        assert own is not None and own.status == 200
        fits_without_sideways_scrolling(page)

        other = page.goto(f"{base_url}/dashboard/points/main-library")
        assert other is not None and other.status == 403
        expect(page.get_by_role("heading", level=1)).to_have_text("Not yours to see")
        expect(page.get_by_text("main_library")).to_have_count(0)
        no_axe_violations(page)
        screenshot(page, "forbidden")

        users = page.goto(f"{base_url}/dashboard/users")
        assert users is not None and users.status == 403
    finally:
        page.context.close()
