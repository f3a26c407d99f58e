"""The result pages in headless Chromium: sign in, read the overview, open a flow, filter
it, download both exports and open them, filter comments and open a whole response,
the follow-up page, keyboard-only use, and axe-core on every page (zero violations).

Responses are seeded through the real conversation service (``results_support``).
``make screenshots`` saves each page at desktop and phone width.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect

from tests.palaute import test_dashboard_browser as shell
from tests.palaute.dashboard_support import ADMIN, MAIN_ANALYST, PASSWORD
from tests.palaute.results_support import Citizens, make_results_app
from tests.palaute.simulator_support import Clock, close_app
from tests.palaute.test_dashboard_browser import (
    PHONE,
    fits_without_sideways_scrolling,
    new_page,
    no_axe_violations,
    screenshot,
    sign_in_with,
)

# The staff pages' page fixture (Chromium and the loopback server are in conftest.py).
page = shell.page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True),
]


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    made = make_results_app(db_url, tmp_path, Clock())
    citizens = Citizens(made)
    # three weeks at main-library, fifteen responses each (five per score), so that each
    # week's share shows on the trend chart
    weeks = [("5", "4", "3"), ("5", "5", "2"), ("4", "3", "2")]
    for week, scores in enumerate(weeks):
        for score in scores:
            for index in range(5):
                comment = f"Kommentti {week}{score}{index}" if index == 0 else "ohita"
                found = "1" if score in ("4", "5") else "4"
                citizens.answer([score, found, comment], days_ago=1 + 7 * week + index)
    for index in range(5):
        citizens.answer(
            ["3", "2", f"Bra tidningar {index}"], language="sv", channel="telegram", days_ago=8
        )
    for score in ("1", "2", "3", "3", "4"):
        citizens.answer([score, "3", "Kylän salaisuus"], point="village-library", days_ago=15)
    yield made
    close_app(made)


def test_overview_flow_exports_comments_and_response(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/dashboard/sign-in")
    sign_in_with(page, ADMIN, PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    chart = page.get_by_role("img", name="Satisfied (CSAT), %, last 12 weeks")
    expect(chart).to_have_count(1)
    expect(
        page.get_by_role("table", name="Satisfied (CSAT), %, last 12 weeks: the numbers")
    ).to_be_visible()
    expect(page.locator("blockquote[lang=fi]").first).to_be_visible()
    no_axe_violations(page)
    screenshot(page, "results-overview")

    page.get_by_role("link", name="All results of this survey").last.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Library visit")
    expect(page.get_by_role("img", name="Answers to question 1")).to_be_visible()
    no_axe_violations(page)
    screenshot(page, "flow")

    page.get_by_label("Service point").select_option("main-library")
    page.get_by_label("Language of the answers").select_option("sv")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(
        f"{base_url}/dashboard/flows/library-visit?from=&to=&point=main-library&channel=&language=sv"
    )
    question = page.get_by_role("region", name="How was your visit? Reply 1–5.")
    expect(question.locator(".key-figures dd").first).to_have_text("5")

    with page.expect_download() as csv_info:
        page.get_by_role("link", name="Download CSV").click()
    body = Path(csv_info.value.path()).read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body), delimiter=";"))
    assert len(rows) == 1 + 5 and {row[3] for row in rows[1:]} == {"sv"}
    with page.expect_download() as xlsx_info:
        page.get_by_role("link", name="Download Excel (XLSX)").click()
    book = openpyxl.load_workbook(
        io.BytesIO(Path(xlsx_info.value.path()).read_bytes()), read_only=True
    )
    values = list(book.worksheets[0].iter_rows(values_only=True))
    assert len(values) == 1 + 5
    assert len(book.worksheets) == 2
    book.close()

    page.get_by_role("link", name="Comments").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Comments")
    page.get_by_label("Search the comments").fill("kommentti")
    page.get_by_label("Score given").select_option("5")
    page.get_by_label("Language of the answers").select_option("")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("blockquote")).to_have_count(3)
    no_axe_violations(page)
    screenshot(page, "comments")

    page.get_by_role("link", name="Whole response").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Response")
    expect(page.get_by_role("cell", name="Everything")).to_be_visible()
    no_axe_violations(page)
    screenshot(page, "response")

    page.get_by_role("link", name="Follow-ups").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Follow-ups")
    no_axe_violations(page)
    screenshot(page, "follow-ups")


def test_keyboard_only_from_overview_to_filtered_comments(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/dashboard/sign-in")
    sign_in_with(page, MAIN_ANALYST, PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    link = page.get_by_role("link", name="Comments").last
    for _ in range(40):
        page.keyboard.press("Tab")
        if link.evaluate("element => element === document.activeElement"):
            break
    else:
        pytest.fail("the comments link is not reachable by Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Comments")
    page.get_by_label("Search the comments").focus()
    page.keyboard.type("bra")
    page.keyboard.press("Enter")  # submits the GET form
    expect(page.locator("blockquote[lang=sv]")).to_have_count(5)
    expect(page.locator("blockquote[lang=fi]")).to_have_count(0)
    # the analyst sees no download buttons, and is told why
    page.goto(f"{base_url}/dashboard/flows/library-visit")
    expect(page.get_by_role("link", name="Download CSV")).to_have_count(0)
    expect(page.get_by_text("Raw exports (one row per response")).to_be_visible()
    no_axe_violations(page)


def test_the_result_pages_fit_a_phone(browser: Browser, base_url: str) -> None:
    page = new_page(browser, viewport=PHONE)
    try:
        page.goto(f"{base_url}/dashboard/sign-in")
        sign_in_with(page, ADMIN, PASSWORD)
        for path in (
            "/dashboard/",
            "/dashboard/flows/library-visit",
            "/dashboard/flows/library-visit/comments",
            "/dashboard/follow-ups",
        ):
            page.goto(base_url + path)
            fits_without_sideways_scrolling(page)
            no_axe_violations(page)
    finally:
        page.context.close()
