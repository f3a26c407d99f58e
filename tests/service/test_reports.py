"""Results read through ResultsService, with responses seeded through the conversation
service (SMS and simulator), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine

from bot.measures import CellKind
from service.conversations import ConversationService
from service.exports import write_csv, write_xlsx
from service.reports import (
    BadFilter,
    GroupBy,
    NotAllowed,
    Period,
    ResultsFilter,
    ResultsService,
)
from tests.service.support import SECRET, T0, Seeder, visit_catalogue

F = ResultsFilter(flow_id="visit")


@pytest.fixture
def seeded(engine: Engine, tmp_path: Path) -> tuple[Seeder, ResultsService]:
    catalogue = visit_catalogue(tmp_path / "flows")
    conversations = ConversationService(engine, catalogue, address_key_secret=SECRET)
    return Seeder(conversations), ResultsService(engine, catalogue, timezone="Europe/Helsinki")


def test_summary_counts_every_step_and_leaves_test_data_out(
    seeded: tuple[Seeder, ResultsService],
) -> None:
    seeder, results = seeded
    # 12 people: overall 5 (x6), 4 (x4), 2 (x2); experience very_good x6, good x4, dont_know
    # x2; nps 10 x6, 8 x4, 3 x2; comments from the first 7, the other 5 skip.
    for index in range(12):
        overall = "5" if index < 6 else ("4" if index < 10 else "2")
        comment = f"Kommentti {index}" if index < 7 else "ohita"
        experience = "1" if index < 6 else ("2" if index < 10 else "6")
        nps = "10" if index < 6 else ("8" if index < 10 else "3")
        seeder.respond([overall, comment, experience, nps])
    # Two simulator runs (staff trying the flow): test data.
    seeder.respond(["1", "testi", "5", "0"], channel="simulator")
    seeder.respond(["1", "testi", "5", "0"], channel="simulator")

    summary = results.summary(F, language="en")
    assert summary.runs_started.value == 12 and summary.runs_completed.value == 12
    overall = summary.step("overall").result
    counts = {cell.key: cell.count for cell in overall.distribution}
    # "2" (2 answers) is fewer than 5; "4" (4) too; both hidden, sum 6 >= 5.
    assert counts == {"1": 0, "2": None, "3": 0, "4": None, "5": 6, "skipped": 0}
    assert overall.responses.value == 12
    # csat = top two (5 and 4) / answered = 10/12, but "4" is hidden and "2" is not in the
    # top two: csat would reveal "4" (and so "2"): suppressed.
    assert overall.positive is None
    experience = summary.step("experience").result
    assert {c.key: c.count for c in experience.distribution if c.kind is CellKind.ANSWER} == {
        "very_good": 6,
        "good": None,
        "neither": 0,
        "poor": 0,
        "very_poor": 0,
    }
    assert summary.step("experience").labels["very_good"] == "Very good"
    comment = summary.step("comment").result
    assert comment.answered.value == 7 and comment.responses.value == 12
    assert summary.main_step == "overall"

    with_tests = results.summary(ResultsFilter(flow_id="visit", include_test=True))
    assert with_tests.runs_started.value == 14
    assert with_tests.step("overall").result.responses.value == 14


def test_measures_when_the_numbers_are_large_enough(
    seeded: tuple[Seeder, ResultsService],
) -> None:
    seeder, results = seeded
    for index in range(15):
        overall = "5" if index < 5 else ("4" if index < 10 else "3")
        experience = "1" if index < 5 else ("2" if index < 10 else "6")
        seeder.respond([overall, "ohita", experience, "9" if index < 10 else "5"])
    summary = results.summary(F)
    overall = summary.step("overall").result
    assert overall.positive is not None
    assert (overall.positive.numerator, overall.positive.denominator) == (10, 15)
    assert overall.mean is not None and overall.mean.mean == pytest.approx(4.0)
    fft = summary.step("experience").result
    # % positive counts "don't know" (5) in the denominator: 10/15, not 10/10
    assert fft.positive is not None and fft.positive.denominator == 15
    assert fft.positive.numerator == 10
    nps = summary.step("recommend").result.nps
    assert nps is not None and nps.score == pytest.approx(100 * (10 - 5) / 15)


def test_filters_by_point_channel_language_and_local_dates(
    seeded: tuple[Seeder, ResultsService],
) -> None:
    seeder, results = seeded
    for _ in range(5):
        seeder.respond(["5", "ohita", "1", "10"], point="north")
    for _ in range(6):
        seeder.respond(["4", "ohita", "2", "9"], point="south", language="sv")
    # 22:30 UTC on 2 March is 00:30 on 3 March in Helsinki
    late = datetime(2026, 3, 2, 22, 30, tzinfo=T0.tzinfo)
    for _ in range(7):
        seeder.respond(["3", "ohita", "3", "5"], point="south", at=late)

    def responses(**kwargs: object) -> int | None:
        filters = ResultsFilter(flow_id="visit", **kwargs)  # type: ignore[arg-type]
        return results.summary(filters).step("overall").result.responses.value

    assert responses() == 18
    assert responses(point="north") == 5
    assert responses(language="sv") == 6
    assert responses(channel="sms") == 18
    assert responses(channel="telegram") == 0
    assert responses(date_from=date(2026, 3, 3)) == 7
    assert responses(date_to=date(2026, 3, 2)) == 11
    assert responses(points_allowed=frozenset({"north"})) == 5

    by_point = results.breakdown(F, GroupBy.POINT)
    assert [(key, r.responses.value) for key, r in by_point.groups] == [
        ("north", 5),
        ("south", 13),
    ]


def test_a_point_outside_the_readers_points_is_refused(
    seeded: tuple[Seeder, ResultsService],
) -> None:
    _, results = seeded
    analyst = ResultsFilter(flow_id="visit", points_allowed=frozenset({"north"}), point="south")
    with pytest.raises(NotAllowed):
        results.summary(analyst)
    with pytest.raises(NotAllowed):
        results.comments(analyst)
    with pytest.raises(NotAllowed):
        list(results.export_rows(analyst))


def test_weekly_trend_in_local_weeks_with_suppressed_small_weeks(
    seeded: tuple[Seeder, ResultsService],
) -> None:
    seeder, results = seeded
    # Week 10 (2-8 March 2026): 6 answers of 5; week 11: 2 answers; week 12: nothing;
    # Sunday 8 March 22:30 UTC is Monday 9 March 00:30 local: week 11.
    for _ in range(6):
        seeder.respond(["5", "ohita", "1", "10"], at=T0)
    sunday_night = datetime(2026, 3, 8, 22, 30, tzinfo=T0.tzinfo)
    for _ in range(2):
        seeder.respond(["1", "ohita", "5", "0"], at=sunday_night)
    trend = results.trend(
        ResultsFilter(flow_id="visit", date_from=date(2026, 3, 2), date_to=date(2026, 3, 22)),
        Period.WEEK,
    )
    assert trend.step_id == "overall" and trend.measure == "csat"
    assert [p.label for p in trend.points] == ["2026-W10", "2026-W11", "2026-W12"]
    first, second, third = trend.points
    assert first.responses.value == 6 and first.headline is not None
    assert first.headline.value == pytest.approx(100.0)
    assert second.responses.suppressed and second.headline is None
    assert third.responses.value == 0 and third.headline is None
    # Without dates: from the first to the last answer
    assert [p.label for p in results.trend(F, Period.DAY).points][:1] == ["2026-03-02"]


def test_comments_newest_first_with_score_search_and_pages(
    seeded: tuple[Seeder, ResultsService],
) -> None:
    seeder, results = seeded
    texts = ["Hyvä palvelu", "ÄÄNEKÄS tila", "Ystävällinen", "Jono oli pitkä", "ok"]
    for index, text in enumerate(texts):
        overall = "5" if index % 2 == 0 else "2"
        seeder.respond([overall, text, "1", "9"], at=T0 + timedelta(hours=index))
    seeder.respond(["1", "simulaattori", "1", "9"], channel="simulator")

    page = results.comments(F, limit=2, language="en")
    assert [c.text for c in page.comments] == ["ok", "Jono oli pitkä"]
    assert [c.score for c in page.comments] == [5, 2]
    assert page.comments[0].answered_at.utcoffset() == timedelta(hours=2)  # Helsinki, EET
    assert page.next_cursor is not None
    second = results.comments(F, limit=2, cursor=page.next_cursor)
    assert [c.text for c in second.comments] == ["Ystävällinen", "ÄÄNEKÄS tila"]
    last = results.comments(F, limit=2, cursor=second.next_cursor)
    assert [c.text for c in last.comments] == ["Hyvä palvelu"] and last.next_cursor is None

    assert [c.text for c in results.comments(F, search="äänekäs").comments] == ["ÄÄNEKÄS tila"]
    assert [c.text for c in results.comments(F, search="100%").comments] == []
    low = results.comments(F, scores=["1", "2"])
    assert [c.text for c in low.comments] == ["Jono oli pitkä", "ÄÄNEKÄS tila"]
    with pytest.raises(BadFilter):
        results.comments(F, cursor="not-a-cursor")
    with pytest.raises(BadFilter):
        results.comments(F, scores=["great"])


def test_csv_and_xlsx_exports_one_row_per_response(
    seeded: tuple[Seeder, ResultsService], tmp_path: Path
) -> None:
    seeder, results = seeded
    seeder.respond(["5", 'Hyvä; "hieno" palvelu', "1", "10"], point="north")
    seeder.respond(["2", "ohita", "6", "3"], point="south", language="sv")
    seeder.respond(["4"], point="south")  # left after the first question
    for _ in range(4):
        seeder.respond(["5", "ohita", "1", "10"], point="north")

    out = io.BytesIO()
    assert write_csv(results, F, out, language="fi") == 7
    raw = out.getvalue()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    head = rows[0]
    assert head[:7] == [
        "Vastaus",
        "Toimipiste",
        "Kanava",
        "Kieli",
        "Tila",
        "Aloitettu",
        "Valmis",
    ]
    assert head[7:] == [
        "overall",
        "overall_arvo",
        "comment",
        "experience",
        "experience_arvo",
        "recommend",
        "recommend_arvo",
    ]
    first = dict(zip(head, rows[1], strict=True))
    assert first["Toimipiste"] == "north" and first["Kanava"] == "sms"
    assert first["Aloitettu"] == "2026-03-02 10:00:00"  # local time
    assert first["comment"] == 'Hyvä; "hieno" palvelu'
    assert (first["experience"], first["experience_arvo"]) == ("Erittäin hyvä", "very_good")
    second = dict(zip(head, rows[2], strict=True))
    assert second["comment"] == "(ohitettu)"
    assert (second["experience"], second["experience_arvo"]) == ("En osaa sanoa", "dont_know")
    third = dict(zip(head, rows[3], strict=True))
    assert third["overall_arvo"] == "4" and third["comment"] == "" and third["Valmis"] == ""

    path = tmp_path / "visit.xlsx"
    assert write_xlsx(results, F, path, language="en") == 7
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == ["Responses", "Summary"]
    sheet_rows = list(book["Responses"].iter_rows(values_only=True))
    assert len(sheet_rows) == 8
    assert sheet_rows[1][1] == "north" and sheet_rows[1][7:9] == ("5", 5)
    assert sheet_rows[1][5] == datetime(2026, 3, 2, 10, 0)
    summary = list(book["Summary"].iter_rows(values_only=True))
    runs = [row for row in summary if row[1] == "Runs started"]
    assert runs[0][3] == 7
    # overall: 5 x "5", 1 x "4", 1 x "2". "4" and "2" are fewer than 5, and together 2:
    # each would be known to be 1, so "5" is hidden too; "3" (none) stays 0.
    overall = {row[2]: row[3] for row in summary if row[0] == "overall" and row[2]}
    assert overall == {
        "1": 0,
        "2": "fewer than 5",
        "3": 0,
        "4": "fewer than 5",
        "5": "fewer than 5",
        "(skipped)": 0,
    }
    responses = [row for row in summary if row[0] == "overall" and row[1] == "Responses"]
    assert responses[0][3] == 7
    book.close()


def test_one_response_only_within_the_readers_points(
    seeded: tuple[Seeder, ResultsService],
) -> None:
    seeder, service = seeded
    seeder.respond(["4", "Hyvä", "1", "9"], point="north")
    seeder.respond(["2", "Huono", "4", "3"], point="south")
    rows = list(service.export_rows(ResultsFilter("visit"), language="en"))
    north, south = rows[-2], rows[-1]
    found = service.response(ResultsFilter("visit"), north.run_id, language="en")
    assert found == north
    assert [(a.step_id, a.label) for a in found.answers] == [
        ("overall", "4"),
        ("comment", "Hyvä"),
        ("experience", "Very good"),
        ("recommend", "9"),
    ]
    mine = ResultsFilter("visit", points_allowed=frozenset({"north"}))
    assert service.response(mine, south.run_id) is None
    assert service.response(mine, north.run_id) is not None
    assert service.response(ResultsFilter("visit"), 10**9) is None
