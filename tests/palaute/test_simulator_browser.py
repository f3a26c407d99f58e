"""The simulator in headless Chromium: a citizen completes a whole survey in Finnish.

Uses Debian's chromium (/usr/bin/chromium, installed by `make browser`), never a
downloaded browser. The app runs in a thread on a free loopback port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect

from tests.palaute.simulator_support import close_app, make_app, stored_answers

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True),
]


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    made = make_app(db_url, tmp_path / "flows")
    yield made
    close_app(made)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="fi-FI")
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()


def bubbles(page: Page, who: str) -> list[str]:
    return [text.strip() for text in page.locator(f"#log .bubble.{who} .text").all_inner_texts()]


def test_a_citizen_completes_a_survey_in_finnish(page: Page, base_url: str, db_url: str) -> None:
    # The page runs under its Content-Security-Policy: nothing of it may be blocked.
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: (
            blocked.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    loaded = page.goto(f"{base_url}/simulator?ui=fi")
    assert loaded is not None
    assert "frame-ancestors 'none'" in loaded.headers["content-security-policy"]
    expect(page.get_by_role("heading", level=1)).to_have_text("Keskustelusimulaattori")

    page.get_by_label("Kysely", exact=True).select_option(label="Kirjaston testikysely")
    page.get_by_label("Kysymysten kieli").select_option(label="suomi")
    page.get_by_role("button", name="Aloita", exact=True).click()

    expect(page.locator("#log .bubble.bot")).to_have_count(2)
    assert bubbles(page, "bot") == [
        "Hei! Kolme lyhyttä kysymystä.",
        "Miten käyntisi onnistui? Vastaa 1–5.",
    ]
    answers = page.get_by_role("group", name="Vastausvaihtoehdot")
    expect(answers.get_by_role("button")).to_have_text(["1", "2", "3", "4", "5"])

    # A reply the bot does not understand: typed, re-prompted, buttons stay.
    page.get_by_label("Viestisi").fill("kuusi")
    page.get_by_role("button", name="Lähetä").click()
    expect(page.locator("#log .bubble.reprompt")).to_have_count(1)
    expect(answers.get_by_role("button")).to_have_count(5)

    # Tap a button.
    answers.get_by_role("button", name="2", exact=True).click()
    expect(page.locator("#log .bubble.bot .text").last).to_have_text("Mikä meni pieleen?")
    expect(answers).to_be_hidden()

    # Type a comment and send it with Enter.
    page.get_by_label("Viestisi").fill("Varaamani kirja ei ollut hyllyssä")
    page.keyboard.press("Enter")
    expect(page.locator("#log .bubble.bot .text").last).to_have_text("Tuletko uudelleen?")
    expect(answers.get_by_role("button")).to_have_text(["Kyllä", "Ei"])

    # Keyboard only: focus moves to the first answer button, Enter presses it.
    expect(answers.get_by_role("button", name="Kyllä")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page.get_by_role("status")).to_have_text("Kysely on valmis. Vastaukset on tallennettu.")
    assert bubbles(page, "citizen") == ["kuusi", "2", "Varaamani kirja ei ollut hyllyssä", "Kyllä"]
    assert bubbles(page, "bot")[-1] == "Kiitos vastauksistasi!"

    table = page.locator("#answers tbody tr")
    expect(table).to_have_count(3)
    assert [[cell.strip() for cell in row.split("\t")] for row in table.all_inner_texts()] == [
        ["overall\nMiten käyntisi onnistui? Vastaa 1–5.", "2", "2"],
        ["went_wrong\nMikä meni pieleen?", '"Varaamani kirja ei ollut hyllyssä"',
         "Varaamani kirja ei ollut hyllyssä"],
        ["again\nTuletko uudelleen?", '"yes"', "yes"],
    ]  # fmt: skip
    expect(page.locator("#run-status .badge")).to_have_text("valmis")

    assert stored_answers(db_url) == [
        ("simulator", "sim-test", "overall", 2, None, "2", "fi", False),
        ("simulator", "sim-test", "went_wrong", None, "Varaamani kirja ei ollut hyllyssä",
         "Varaamani kirja ei ollut hyllyssä", "fi", False),
        ("simulator", "sim-test", "again", None, "yes", "yes", "fi", False),
    ]  # fmt: skip

    # A reload continues the same simulated contact and shows the conversation again.
    session = page.locator("#session-id").inner_text()
    page.reload()
    expect(page.locator("#session-id")).to_have_text(session)
    expect(page.locator("#log .bubble.citizen")).to_have_count(4)
    expect(page.locator("#answers tbody tr")).to_have_count(3)

    # As by SMS, the start keyword starts the survey again.
    page.get_by_label("Viestisi").fill("TESTI")
    page.keyboard.press("Enter")
    expect(page.locator("#log .bubble.bot .text").last).to_have_text(
        "Miten käyntisi onnistui? Vastaa 1–5."
    )
    expect(page.get_by_text("Ei vielä vastauksia.")).to_be_visible()
    answers.get_by_role("button", name="5", exact=True).click()
    expect(page.locator("#answers tbody tr")).to_have_count(1)
    assert blocked == []

    # Start over: a fresh run of the same flow, nothing answered yet.
    page.get_by_role("button", name="Aloita alusta").click()
    expect(page.locator("#log .bubble")).to_have_count(2)
    expect(page.get_by_text("Ei vielä vastauksia.")).to_be_visible()
    expect(page.locator("#run-status .badge")).to_have_text("käynnissä")
    assert len(stored_answers(db_url)) == 4


def test_the_page_fits_a_phone_and_switches_ui_language(browser: Browser, base_url: str) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="sv-FI")
    phone = context.new_page()
    try:
        phone.goto(f"{base_url}/simulator")  # Accept-Language sv-FI: Swedish UI
        expect(phone.get_by_role("heading", level=1)).to_have_text("Chattsimulator")
        phone.get_by_label("Enkät", exact=True).select_option(label="Quick poll")
        expect(phone.get_by_label("Frågornas språk")).to_have_value("en")
        phone.get_by_role("button", name="Starta").click()
        choice = phone.locator("#choices .choice").first
        expect(choice).to_be_visible()
        box = choice.bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 44
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"the page scrolls sideways on a phone ({width}px)"

        phone.get_by_role("link", name="suomi").click()
        expect(phone.get_by_role("heading", level=1)).to_have_text("Keskustelusimulaattori")
        expect(phone.locator("#log .bubble.bot")).to_have_count(1)  # the same conversation
    finally:
        context.close()
