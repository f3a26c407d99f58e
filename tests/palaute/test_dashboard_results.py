"""The result pages: overview, a flow's results with filters, exports, comments, one
response and the follow-up funnel; each checked for what staff read and who may read it.
Responses are seeded through the real conversation service."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.palaute.dashboard_support import (
    ADMIN,
    MAIN_ANALYST,
    NURSE,
    VILLAGE_ANALYST,
    english_client,
    sign_in,
    text,
)
from tests.palaute.results_support import Citizens, make_results_app
from tests.palaute.simulator_support import Clock, close_app
from tests.service.followup_support import make_token

FLOW = "/dashboard/flows/library-visit"


def signed_in(app: Flask, email: str) -> FlaskClient:
    client = english_client(app)
    assert sign_in(client, email).status_code == 302
    return client


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    made = make_results_app(db_url, tmp_path, Clock())
    citizens = Citizens(made)
    # main-library: twenty responses in Finnish by SMS (ten 5s, five 4s, five 2s),
    # five in Swedish by Telegram.
    for index in range(20):
        score = "5" if index < 10 else "4" if index < 15 else "2"
        comment = f"Kommentti {index}" if index % 4 == 0 else "ohita"
        citizens.answer([score, "1" if index < 15 else "4", comment], days_ago=1 + index % 3)
    for index in range(5):
        citizens.answer(
            ["3", "2", f"Bra tidningar {index}"], language="sv", channel="telegram", days_ago=2
        )
    # village-library: five responses, each with a comment only its own staff may read.
    for score in ("1", "2", "3", "3", "4"):
        citizens.answer([score, "3", "Kylän salaisuus"], point="village-library")
    yield made
    close_app(made)


def test_the_overview_shows_the_main_measure_trend_per_point_and_latest_comments(
    app: Flask,
) -> None:
    page = signed_in(app, ADMIN).get("/dashboard/")
    assert page.status_code == 200
    shown = text(page)
    # 25 + 5 responses; top two (4-5) of 1-5: 15 of 30 at main, village's own hidden.
    assert "Satisfied (CSAT), %, now 53.3 (95% interval 36.1–69.8)" in shown
    assert "main-library 25 60.0 (95% interval 40.7–76.6)" in shown
    assert "village-library 5 no figure" in shown
    assert "2026-W20 30 53.3" in shown  # responses per week in the chart's table
    html = page.get_data(as_text=True)
    assert 'class="band"' in html and 'class="line"' in html
    assert re.search(r'<svg role="img"[^>]*aria-labelledby="flow-\d+-trend-title', html)
    assert '<blockquote lang="fi">Kylän salaisuus</blockquote>' in html
    assert '<blockquote lang="sv">' not in html  # only the latest three per flow


def test_the_flow_page_shows_every_step_with_dont_know_and_skips_apart(app: Flask) -> None:
    page = signed_in(app, ADMIN).get(FLOW)
    assert page.status_code == 200
    shown = text(page)
    assert "Question 1 How was your visit? Reply 1–5. Responses 30 Answered 30" in shown
    # scores 1 (1) and 2 (6): 1 is fewer than 5, and 2 is hidden with it
    assert "1 fewer than 5 – – 2 fewer than 5 – – 3 7 23.3 %" in shown
    assert "Everything 15 50.0 %" in shown
    assert "Don&#39;t know don't know: not scored 5 16.7 %" in shown
    assert "Skipped (not answered) 0" in shown
    assert "Question 3 Tell us more Responses 30 Answered 15" in shown
    assert shown.count("Download CSV") == 1


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("point=village-library", "Responses 5 Answered 5"),
        ("language=sv", "Responses 5 Answered 5"),
        ("channel=telegram", "Responses 5 Answered 5"),
        ("channel=sms&point=main-library", "Responses 20 Answered 20"),
        ("from=2026-05-13&to=2026-05-14", "Responses 12 Answered 12"),
        ("from=2026-05-15", "Responses 0 Answered 0"),
    ],
)
@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_the_flow_page_filters(app: Flask, query: str, expected: str) -> None:
    page = signed_in(app, ADMIN).get(f"{FLOW}?{query}")
    assert page.status_code == 200
    assert f"How was your visit? Reply 1–5. {expected}" in text(page)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=yesterday", "Enter a date like 2026-03-31."),
        ("from=2026-05-14&to=2026-05-01", "The last day must be on or after the first day."),
        ("language=de", "Choose one of the languages in the list."),
        ("point=nowhere", "Choose one of the service points in the list."),
    ],
)
@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_a_bad_filter_says_what_to_fix(app: Flask, query: str, message: str) -> None:
    page = signed_in(app, ADMIN).get(f"{FLOW}?{query}")
    assert page.status_code == 400
    assert f"There is a problem {message}" in text(page)


def test_both_exports_open_with_the_same_filters(app: Flask) -> None:
    admin = signed_in(app, ADMIN)
    page = admin.get(f"{FLOW}?point=village-library").get_data(as_text=True)
    links = re.findall(r'href="([^"]*export\.(?:csv|xlsx)[^"]*)"', page)
    assert len(links) == 2 and all("point=village-library" in link for link in links)
    csv_response = admin.get(links[0].replace("&amp;", "&"))
    assert csv_response.status_code == 200
    assert "attachment" in csv_response.headers["Content-Disposition"]
    body = csv_response.get_data().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body), delimiter=";"))
    assert len(rows) == 1 + 5
    assert {row[1] for row in rows[1:]} == {"village-library"}
    xlsx_response = admin.get(links[1].replace("&amp;", "&"))
    assert xlsx_response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(xlsx_response.get_data()), read_only=True)
    sheet = book.worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == 1 + 5
    assert "Kylän salaisuus" in values[1]
    book.close()


def test_an_analyst_may_not_download_raw_exports_and_is_told_so(app: Flask) -> None:
    main = signed_in(app, MAIN_ANALYST)
    page = text(main.get(FLOW))
    assert "Download CSV" not in page
    assert "Raw exports (one row per response, with what people wrote) are for" in page
    for url in (FLOW + "/export.csv", FLOW + "/export.xlsx"):
        refused = main.get(url)
        assert refused.status_code == 403
        assert "for administrators and editors" in text(refused)


def test_an_analyst_of_one_library_cannot_reach_the_other_by_url(app: Flask) -> None:
    village = signed_in(app, VILLAGE_ANALYST)
    overview = village.get("/dashboard/").get_data(as_text=True)
    assert "village-library" in overview and "main-library" not in overview
    assert "Kommentti" not in overview and "Bra tidningar" not in overview
    assert "Health centre" not in overview
    own = text(village.get(FLOW))
    assert "How was your visit? Reply 1–5. Responses 5 Answered 5" in own
    assert village.get(f"{FLOW}?point=main-library").status_code == 403
    comments = village.get(FLOW + "/comments").get_data(as_text=True)
    assert "Kylän salaisuus" in comments and "Kommentti" not in comments
    assert village.get(f"{FLOW}/comments?point=main-library").status_code == 403
    # response 1 is a main-library response: not found for the village analyst
    assert village.get(FLOW + "/responses/1").status_code == 404
    assert signed_in(app, ADMIN).get(FLOW + "/responses/1").status_code == 200
    for url in ("/dashboard/flows/health-fft", "/dashboard/flows/health-fft/comments"):
        assert village.get(url).status_code == 403
    assert village.get("/dashboard/flows/health-fft/responses/1").status_code == 403
    assert village.get("/dashboard/flows/nowhere").status_code == 404
    # the health-centre editor may export, but not another unit's flow
    nurse = signed_in(app, NURSE)
    assert nurse.get(FLOW + "/export.csv").status_code == 403
    assert nurse.get(FLOW + "/export.xlsx").status_code == 403
    assert nurse.get("/dashboard/flows/health-fft/export.csv").status_code == 200


def test_comments_search_score_language_and_pages(app: Flask) -> None:
    admin = signed_in(app, ADMIN)
    found = admin.get(FLOW + "/comments?q=kommentti&score=5").get_data(as_text=True)
    assert re.findall(r'<blockquote lang="fi">(Kommentti \d+)', found) == [
        "Kommentti 0",
        "Kommentti 4",
        "Kommentti 8",
    ]
    swedish = admin.get(FLOW + "/comments?language=sv").get_data(as_text=True)
    assert swedish.count('<blockquote lang="sv">Bra tidningar') == 5
    assert "Kommentti" not in swedish
    dated = admin.get(FLOW + "/comments?from=2026-05-13&point=main-library")
    assert re.findall(r"(Kommentti \d+)</blockquote>", dated.get_data(as_text=True)) == [
        "Kommentti 12",
        "Kommentti 0",
    ]
    assert admin.get(FLOW + "/comments?score=9").status_code == 400
    assert admin.get(FLOW + "/comments?cursor=nonsense").status_code == 400


def test_comments_page_through_newest_first(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    from palaute.web.dashboard import comments as page_module

    monkeypatch.setattr(page_module, "PAGE_SIZE", 4)
    admin = signed_in(app, ADMIN)
    seen: list[str] = []
    url: str | None = FLOW + "/comments?point=main-library"
    while url:
        html = admin.get(url).get_data(as_text=True)
        seen += re.findall(r'<blockquote lang="\w+">([^<]+)</blockquote>', html)
        more = re.search(r'href="([^"]+)" rel="next"', html)
        url = more.group(1).replace("&amp;", "&") if more else None
    assert len(seen) == 10 and len(set(seen)) == 10


def test_a_response_page_shows_the_whole_run(app: Flask) -> None:
    admin = signed_in(app, ADMIN)
    comments = admin.get(FLOW + "/comments?language=sv").get_data(as_text=True)
    link = re.search(r'href="(/dashboard/flows/library-visit/responses/\d+)"', comments)
    assert link
    page = admin.get(link.group(1))
    shown = text(page)
    assert "Service point main-library Channel telegram" in shown
    assert "How was your visit? Reply 1–5. 3" in shown
    assert "Did you find what you looked for? Some" in shown
    assert '<span lang="sv">Bra tidningar' in page.get_data(as_text=True)
    assert admin.get(FLOW + "/responses/999999").status_code == 404


def test_the_follow_up_page_counts_only_visits_at_the_users_points(app: Flask) -> None:
    token = make_token(app.extensions["palaute"].db, organisation="Palaute", source="his")
    visits = [
        {
            "external_id": f"V-{index}",
            "visit_at": "2026-05-14T10:15:00+03:00",
            "phone": f"040 123 45{index:02d}",
            "service_point": point,
            "language": "fi",
            "flow": "library-visit",
        }
        for index, point in enumerate(["main-library"] * 3 + ["village-library"] * 2)
    ]
    posted = app.test_client().post(
        "/api/visits", json=visits, headers={"Authorization": f"Bearer {token}"}
    )
    assert posted.status_code in (200, 201, 207), posted.get_data(as_text=True)
    admin = text(signed_in(app, ADMIN).get("/dashboard/follow-ups"))
    assert "Library visit library-visit" in admin
    assert (
        "Visits 5 Surveys sent 0 0 % of visits Waiting to be sent 5 "
        "Delivered 0 Started 0 Completed 0" in admin
    )
    village = text(signed_in(app, VILLAGE_ANALYST).get("/dashboard/follow-ups"))
    assert "Visits 2 Surveys sent 0 0 % of visits" in village
    nurse = text(signed_in(app, NURSE).get("/dashboard/follow-ups"))
    assert "No visits yet." in nurse


def test_the_follow_up_page_with_no_visits_says_so(app: Flask) -> None:
    page = signed_in(app, ADMIN).get("/dashboard/follow-ups")
    assert page.status_code == 200
    assert "No visits yet." in text(page)
    assert signed_in(app, ADMIN).get("/dashboard/follow-ups?from=soon").status_code == 400


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_the_pages_speak_finnish_and_mark_comments_in_their_own_language(app: Flask) -> None:
    admin = signed_in(app, ADMIN)
    overview = admin.get("/dashboard/", headers={"Accept-Language": "fi"})
    assert "Tyytyväisiä (CSAT), %, nyt 53,3" in text(overview)
    flow = text(admin.get(FLOW, headers={"Accept-Language": "fi"}))
    assert "Kysymys 1 Miten käyntisi onnistui? Vastaa 1–5. Vastauksia 30" in flow
    assert "Ohitettu (ei vastattu)" in flow and "alle 5" in flow
    swedish = admin.get(FLOW + "/comments?language=sv", headers={"Accept-Language": "fi"})
    html = swedish.get_data(as_text=True)
    assert '<html lang="fi">' in html
    assert '<blockquote lang="sv">Bra tidningar' in html
