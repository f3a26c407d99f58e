"""The satisfaction measures against values worked out by hand (the working is beside
each expected value; z = 1.959964, z^2 = 3.841459)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.flow import Option, ScaleStyle, Step, StepKind
from bot.measures import (
    CellKind,
    Measure,
    StepResult,
    Tally,
    hide_small,
    mean_of,
    net_score,
    step_result,
    t_quantile,
    wilson,
)
from bot.periods import Period, buckets

TEXT = {"fi": "?", "sv": "?", "en": "?"}


def scale(metric: str | None = "csat", style: ScaleStyle = ScaleStyle.NUMERIC) -> Step:
    top = 4 if style is ScaleStyle.SMILEY else 5
    return Step(
        id="overall",
        kind=StepKind.SCALE,
        text=TEXT,
        scale_style=style,
        scale_max=top,
        metric=metric,
    )


def fft_step() -> Step:
    scores = [("very_good", 5), ("good", 4), ("neither", 3), ("poor", 2), ("very_poor", 1)]
    options = [Option(oid, {"en": oid}, score=score) for oid, score in scores]
    options.append(Option("dont_know", {"en": "Don't know"}, score=None))
    return Step(
        id="experience", kind=StepKind.CHOICE, text=TEXT, options=tuple(options), metric="fft"
    )


def cells(result: StepResult) -> dict[str, int | None]:
    return {cell.key: cell.count for cell in result.distribution}


def test_wilson_interval_of_8_out_of_10() -> None:
    # p = 0.8, n = 10: scale = 1 + z^2/n = 1.384146
    # centre = (0.8 + z^2/20) / 1.384146 = (0.8 + 0.192073) / 1.384146 = 0.716738
    # half = z/1.384146 * sqrt(0.8*0.2/10 + z^2/400) = 1.416013 * sqrt(0.0256037) = 0.226576
    # -> 0.490162 .. 0.943314 (the textbook Wilson interval for 8/10: 0.4902-0.9433)
    p = wilson(8, 10)
    assert p.share == 0.8
    assert p.low == pytest.approx(0.490162, abs=1e-5)
    assert p.high == pytest.approx(0.943318, abs=1e-5)


def test_wilson_stays_inside_0_and_1_and_refuses_an_empty_base() -> None:
    # 0/5: centre = (0 + z^2/10)/(1 + z^2/5) = 0.384146/1.768292 = 0.217241 = half -> 0 .. 0.434
    none = wilson(0, 5)
    assert none.low == 0.0
    assert none.high == pytest.approx(0.434482, abs=1e-5)
    with pytest.raises(ValueError):
        wilson(1, 0)


def test_students_t_quantiles_match_the_printed_tables() -> None:
    assert t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-4)
    assert t_quantile(0.975, 4) == pytest.approx(2.7764, abs=1e-4)
    assert t_quantile(0.975, 29) == pytest.approx(2.0452, abs=1e-4)
    assert t_quantile(0.975, 1000) == pytest.approx(1.9623, abs=1e-4)
    # a million answers: the normal quantile (a bench once found the iteration stalled)
    for df in (198_013, 1_000_000, 10_000_000):
        assert t_quantile(0.975, df) == pytest.approx(1.959964, abs=1e-4)


def test_csat_is_the_top_two_points_over_answered_with_skips_left_out() -> None:
    # 5:12, 4:8, 3:5, 2:0, 1:5, skipped 6 -> responses 36, answered 30
    tally = Tally({5: 12, 4: 8, 3: 5, 1: 5}, skipped=6)
    result = step_result(scale("csat"), tally)
    assert result.measure is Measure.CSAT
    assert result.responses.value == 36
    assert result.answered.value == 30
    # csat = (12 + 8) / 30 = 0.666667; Wilson: scale = 1 + z^2/30 = 1.128049,
    # centre = (0.666667 + z^2/60)/1.128049 = 0.730691/1.128049 = 0.647748,
    # half = z/1.128049 * sqrt(0.666667*0.333333/30 + z^2/3600) = 1.737482*0.092057 = 0.159947
    assert result.positive is not None
    assert result.positive.percent == pytest.approx(66.6667, abs=1e-3)
    assert result.positive.low == pytest.approx(0.487801, abs=1e-5)
    assert result.positive.high == pytest.approx(0.807695, abs=1e-5)
    # mean = (5*12 + 4*8 + 3*5 + 1*5)/30 = 112/30 = 3.733333
    # squares: 12*1.604444 + 8*0.071111 + 5*0.537778 + 5*7.471111 = 59.866667
    # sd = sqrt(59.866667/29) = 1.436791; se = 1.436791/sqrt(30) = 0.262323
    # t(0.975, 29) = 2.045230 -> half 0.536507 -> 3.196827 .. 4.269840
    assert result.mean is not None
    assert result.mean.mean == pytest.approx(3.733333, abs=1e-5)
    assert result.mean.low == pytest.approx(3.196827, abs=1e-5)
    assert result.mean.high == pytest.approx(4.269840, abs=1e-5)
    assert cells(result) == {"1": 5, "2": 0, "3": 5, "4": 8, "5": 12, "skipped": 6}
    headline = result.headline
    assert headline is not None and headline.name == "csat"
    assert headline.value == pytest.approx(66.6667, abs=1e-3)
    # Shares of each answer are of answered (skips apart): 12/30 = 40 %
    five = next(cell for cell in result.distribution if cell.key == "5")
    assert five.share is not None and five.share.share == pytest.approx(0.4)
    skipped = next(cell for cell in result.distribution if cell.kind is CellKind.SKIPPED)
    assert skipped.share is not None and skipped.share.share == pytest.approx(6 / 36)


def test_fft_counts_dont_know_in_the_denominator_as_nhs_england_publishes() -> None:
    # very good 50, good 30, neither 10, poor 5, very poor 0, don't know 5 -> 100 responses
    tally = Tally({"very_good": 50, "good": 30, "neither": 10, "poor": 5, "dont_know": 5})
    result = step_result(fft_step(), tally)
    assert result.measure is Measure.FFT
    # % positive = (50 + 30) / 100 = 80 % (not 80/95 = 84.2 %, which leaves don't know out)
    # Wilson 80/100: centre = (0.8 + z^2/200)/(1 + z^2/100) = 0.819207/1.038415 = 0.788902,
    # half = z/1.038415 * sqrt(0.0016 + z^2/40000) = 1.887456 * 0.041183 = 0.077731
    assert result.positive is not None
    assert result.positive.percent == pytest.approx(80.0)
    assert result.positive.low == pytest.approx(0.711170, abs=1e-5)
    assert result.positive.high == pytest.approx(0.866633, abs=1e-5)
    # % negative = (5 + 0) / 100 = 5 %; Wilson 5/100 -> 0.021544 .. 0.111750
    assert result.negative is not None
    assert result.negative.percent == pytest.approx(5.0)
    assert result.negative.low == pytest.approx(0.021544, abs=1e-5)
    assert result.negative.high == pytest.approx(0.111750, abs=1e-5)
    dont_know = next(cell for cell in result.distribution if cell.key == "dont_know")
    assert dont_know.kind is CellKind.DONT_KNOW and dont_know.count == 5
    # The mean of scores leaves don't know out: (250 + 120 + 30 + 10)/95 = 4.315789
    assert result.mean is not None and result.mean.mean == pytest.approx(410 / 95)


def test_nps_is_promoters_minus_detractors_with_its_interval() -> None:
    # 10:6, 9:5 -> 11 promoters; 8:5 passive; 6:5, 3:5 -> 10 detractors; answered 26
    tally = Tally({10: 6, 9: 5, 8: 5, 6: 5, 3: 5})
    step = Step(id="recommend", kind=StepKind.NPS, text=TEXT)
    result = step_result(step, tally)
    assert result.measure is Measure.NPS
    assert result.nps is not None
    # NPS = 100 * (11 - 10)/26 = 3.846154
    # var = (p + d - (p - d)^2)/n = (0.423077 + 0.384615 - 0.001479)/26 = 0.031008
    # half = z * sqrt(0.031008) = 1.959964 * 0.176091 = 0.345132 -> -30.667 .. 38.359
    assert result.nps.score == pytest.approx(3.846154, abs=1e-5)
    assert result.nps.low == pytest.approx(-30.6671, abs=1e-3)
    assert result.nps.high == pytest.approx(38.3594, abs=1e-3)
    assert result.nps.promoters.numerator == 11
    assert result.nps.detractors.numerator == 10


def test_net_score_of_all_promoters_is_100_with_an_interval_inside_the_range() -> None:
    all_promoters = net_score(20, 0, 20)
    assert all_promoters.score == 100.0
    assert all_promoters.high == 100.0


def test_smiley_is_the_two_happiest_faces_and_the_mean() -> None:
    # 4 faces: 4:10, 3:10, 2:5, 1:5 -> top two = 20/30; mean = (40+30+10+5)/30 = 2.833333
    result = step_result(scale(None, ScaleStyle.SMILEY), Tally({4: 10, 3: 10, 2: 5, 1: 5}))
    assert result.measure is Measure.SMILEY  # implied by the smiley style
    assert result.positive is not None
    assert result.positive.percent == pytest.approx(66.6667, abs=1e-3)
    assert result.mean is not None and result.mean.mean == pytest.approx(85 / 30)


def test_mean_of_one_value_has_no_interval() -> None:
    one = mean_of({3: 1})
    assert one is not None and one.mean == 3 and one.low is None


def test_small_counts_are_hidden_and_a_lone_hidden_cell_gets_a_partner() -> None:
    # 4:20, 3:10, 2:3, 1:0 with 33 responses: "2" (3) is fewer than 5; with the total shown
    # it would be 33 - 20 - 10 = 3, so the smallest other non-zero count ("3": 10) is hidden
    # too. The top-two share would give 20 + "3" and so "3" and then "2": it is hidden; so
    # is the mean (one equation in the hidden counts). Zero stays zero.
    result = step_result(scale(None, ScaleStyle.SMILEY), Tally({4: 20, 3: 10, 2: 3}))
    assert cells(result) == {"1": 0, "2": None, "3": None, "4": 20, "skipped": 0}
    assert [c.suppressed for c in result.distribution] == [False, True, True, False, False]
    assert result.positive is None and result.mean is None
    assert set(result.suppressed) == {"positive", "mean"}
    assert result.responses.value == 33
    assert result.answered.value == 33  # all the hidden cells: their sum is known anyway
    assert result.headline is None


def test_hidden_cells_adding_up_to_fewer_than_5_take_the_next_smallest_too() -> None:
    # a:2, b:1 are both hidden; 2 + 1 = 3 < 5 would tell both are small, and a total of
    # 3 split in two can only be 1+2 or 2+1: "d" (30), the smallest visible, is hidden too
    assert hide_small({"a": 2, "b": 1, "c": 40, "d": 30}) == {"a", "b", "d"}
    assert hide_small({"a": 5, "b": 0, "c": 7}) == set()
    assert hide_small({"a": 1, "b": 2}) == {"a", "b"}  # total 3: everything


def test_fft_hides_negative_where_it_would_reveal_a_hidden_cell() -> None:
    # don't know 3 is hidden; secondary: "poor" (5) is hidden with it (sum 8).
    # % positive (50 + 30)/98 uses no hidden cell and its base holds both hidden ones: shown.
    # % negative would be poor/98 -> poor = 5, then don't know = 3: hidden.
    tally = Tally({"very_good": 50, "good": 30, "neither": 10, "poor": 5, "dont_know": 3})
    result = step_result(fft_step(), tally)
    assert cells(result)["dont_know"] is None and cells(result)["poor"] is None
    assert result.positive is not None and result.positive.numerator == 80
    assert result.positive.denominator == 98
    assert result.negative is None
    assert "negative" in result.suppressed


def test_fewer_than_5_responses_hide_everything() -> None:
    result = step_result(scale("csat"), Tally({5: 2, 4: 1}, skipped=1))
    assert result.responses.suppressed and result.responses.value is None
    assert result.answered.suppressed
    assert all(cell.count in (None, 0) for cell in result.distribution)
    assert result.positive is None and result.mean is None


def test_no_responses_is_zero_not_suppressed() -> None:
    result = step_result(scale("csat"), Tally({}))
    assert result.responses.value == 0 and not result.responses.suppressed
    assert result.positive is None and result.headline is None


def test_a_skipped_cell_hidden_with_an_answer_hides_answered() -> None:
    # skipped 2 and "1" (4) hidden: answered = 50 + 4 would give skipped = 56 - 54 = 2
    result = step_result(scale("csat"), Tally({5: 30, 4: 20, 1: 4}, skipped=2))
    assert cells(result)["skipped"] is None and cells(result)["1"] is None
    assert result.answered.suppressed
    # shares of answered would give answered back (count / share): none either
    five = next(cell for cell in result.distribution if cell.key == "5")
    assert five.count == 30 and five.share is None


def test_values_a_newer_flow_no_longer_defines_are_shown_as_other() -> None:
    step = Step(
        id="reason",
        kind=StepKind.CHOICE,
        text=TEXT,
        options=(Option("books", {"en": "Books"}), Option("event", {"en": "Event"})),
    )
    result = step_result(step, Tally({"books": 7, "event": 6, "printing": 5}))
    assert [(c.key, c.kind) for c in result.distribution] == [
        ("books", CellKind.ANSWER),
        ("event", CellKind.ANSWER),
        ("printing", CellKind.OTHER),
        ("skipped", CellKind.SKIPPED),
    ]
    assert result.measure is None and result.mean is None  # options without scores


def test_periods_follow_local_midnight_across_daylight_saving_time() -> None:
    helsinki = ZoneInfo("Europe/Helsinki")
    # Clocks go forward on Sunday 29 March 2026 (03:00 EET -> 04:00 EEST): that day is
    # 23 hours long, 22:00 UTC on the 28th to 21:00 UTC on the 29th.
    days = buckets(Period.DAY, date(2026, 3, 28), date(2026, 3, 30), helsinki)
    assert [(b.label, b.start.hour, b.end - b.start) for b in days] == [
        ("2026-03-28", 22, timedelta(hours=24)),
        ("2026-03-29", 22, timedelta(hours=23)),
        ("2026-03-30", 21, timedelta(hours=24)),
    ]
    # ISO weeks start on Monday: 2026-01-01 is a Thursday of week 1 (Mon 29 Dec 2025).
    weeks = buckets(Period.WEEK, date(2026, 1, 1), date(2026, 1, 5), helsinki)
    assert [(b.label, b.first_day) for b in weeks] == [
        ("2026-W01", date(2025, 12, 29)),
        ("2026-W02", date(2026, 1, 5)),
    ]
    assert weeks[0].start == datetime(2025, 12, 28, 22, 0, tzinfo=UTC)
    # October's month holds the 25-hour day when clocks go back (25 Oct 2026).
    months = buckets(Period.MONTH, date(2026, 10, 3), date(2026, 11, 1), helsinki)
    assert [b.label for b in months] == ["2026-10", "2026-11"]
    assert months[0].end - months[0].start == timedelta(days=31, hours=1)
