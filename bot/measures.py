"""Satisfaction measures from answer counts: pure functions, no SQL, no clock.

Storage counts the answers of one step in one cell of a report (per value, plus skips)
with GROUP BY; ``step_result`` turns those counts into what staff read:

- the distribution, with "don't know" (a choice option with ``score: null``) and skips
  apart from the answers that score;
- the measure the step's ``metric:`` names (or its kind implies):

  ``csat``    share of answers in the top two points of the scale, over answered;
  ``nps``     % promoters (9-10) minus % detractors (0-6), over answered;
  ``fft``     Friends and Family Test: % positive (options scoring 5 or 4) and % negative
              (scoring 2 or 1) over ALL responses to the question, "don't know"
              included, skips not (NHS England's published method);
  ``smiley``  share of the two happiest faces, over answered, and the mean;

- for any scale (scale, nps, number, a choice with scores) the mean with a 95% confidence
  interval (Student's t), and for every percentage its 95% Wilson score interval.

Small numbers protect people. In a step's results a count of 1-4 is hidden ("fewer than
5"); if that leaves a hidden count that could be worked out from the total (one hidden
cell, or hidden cells that add up to less than 5), the next smallest counts are hidden too.
Every figure derived from counts (answered, shares, means, measures) is hidden when it
would reveal what a hidden count, or part of the hidden counts, is. When the step's
responses are 1-4, everything but the fact that there were fewer than 5 is hidden.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.flow import Flow, ScaleStyle, Step, StepKind
from bot.texts import system_text

SMALL = 5  # counts 1..SMALL-1 are hidden
Z95 = 1.959963984540054  # standard normal quantile at 0.975

Value = int | str


class Measure(StrEnum):
    CSAT = "csat"
    NPS = "nps"
    FFT = "fft"
    SMILEY = "smiley"


class CellKind(StrEnum):
    ANSWER = "answer"  # a value the step defines (scale point, option, yes/no, number)
    DONT_KNOW = "dont_know"  # a choice option with ``score: null`` in a scored question
    OTHER = "other"  # a stored value the current flow no longer defines (older version)
    SKIPPED = "skipped"  # skipped, or given up after too many invalid replies


@dataclass(frozen=True)
class Tally:
    """How many times each value was answered for one step (in one report cell), and
    how many times the step was skipped."""

    counts: Mapping[Value, int]
    skipped: int = 0

    @property
    def answered(self) -> int:
        return sum(self.counts.values())

    @property
    def responses(self) -> int:
        return self.answered + self.skipped

    @staticmethod
    def of(values: Iterable[Value | None]) -> Tally:
        """A tally of individual answers (None = skipped); for tests and small data."""
        counts: dict[Value, int] = {}
        skipped = 0
        for value in values:
            if value is None:
                skipped += 1
            else:
                counts[value] = counts.get(value, 0) + 1
        return Tally(counts, skipped)


# --- intervals -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proportion:
    """``numerator / denominator`` with its 95% Wilson score interval (all in 0..1)."""

    numerator: int
    denominator: int
    share: float
    low: float
    high: float

    @property
    def percent(self) -> float:
        return 100 * self.share


def wilson(numerator: int, denominator: int, z: float = Z95) -> Proportion:
    """The share with its Wilson score interval (good for small n and shares near 0 or 1)."""
    if denominator <= 0 or not 0 <= numerator <= denominator:
        raise ValueError(f"wilson: need 0 <= {numerator} <= {denominator} and a positive total")
    n = denominator
    p = numerator / n
    z2 = z * z
    scale = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / scale
    half = (z / scale) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return Proportion(numerator, n, p, max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Mean:
    """The mean of ``n`` values with its 95% confidence interval (None when n < 2)."""

    n: int
    mean: float
    sd: float | None
    low: float | None
    high: float | None


def mean_of(counts: Mapping[int, int]) -> Mean | None:
    """Mean, sample standard deviation and t-based 95% interval from value -> count."""
    n = sum(counts.values())
    if n == 0:
        return None
    total = sum(value * count for value, count in counts.items())
    mean = total / n
    if n < 2:
        return Mean(n, mean, None, None, None)
    squares = sum(count * (value - mean) ** 2 for value, count in counts.items())
    sd = math.sqrt(squares / (n - 1))
    half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
    return Mean(n, mean, sd, mean - half, mean + half)


@dataclass(frozen=True)
class NetScore:
    """Net Promoter Score (-100..100) with a 95% interval (normal approximation of the
    difference of two shares of one sample: var = (p + d - (p - d)^2) / n)."""

    promoters: Proportion
    detractors: Proportion
    score: float
    low: float
    high: float


def net_score(promoters: int, detractors: int, answered: int) -> NetScore:
    if answered <= 0:
        raise ValueError("net_score: no answers")
    p = wilson(promoters, answered)
    d = wilson(detractors, answered)
    difference = p.share - d.share
    variance = (p.share + d.share - difference**2) / answered
    half = Z95 * math.sqrt(max(variance, 0.0))
    return NetScore(
        p,
        d,
        100 * difference,
        max(-100.0, 100 * (difference - half)),
        min(100.0, 100 * (difference + half)),
    )


# --- Student's t, for the confidence interval of a mean ---------------------------------


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c = 1.0
    d = 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return result


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1 - front * _beta_fraction(b, a, 1 - x) / b


def t_cdf(t: float, df: int) -> float:
    tail = 0.5 * _incomplete_beta(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t > 0 else tail


def t_pdf(t: float, df: int) -> float:
    log_front = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_front - (df + 1) / 2 * math.log1p(t * t / df))


@functools.lru_cache(maxsize=4096)
def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (0.5 < p < 1):
    Newton's method from the normal quantile (a trend computes one per period)."""
    if not 0.5 < p < 1 or df < 1:
        raise ValueError("t_quantile: need 0.5 < p < 1 and df >= 1")
    t = Z95 if p == 0.975 else 2.0
    step = math.inf
    for _ in range(60):
        step = (t_cdf(t, df) - p) / t_pdf(t, df)
        t = max(t - step, t / 2)  # never past zero: the cdf is convex above the median
        if abs(step) < 1e-10:
            return t
    if abs(step) < 1e-7:  # the cdf's own rounding limits the last digits for huge df
        return t
    raise ArithmeticError(f"t_quantile({p}, {df}) did not converge")  # pragma: no cover


# --- a step's results ---------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One bar of a distribution. ``count`` and ``share`` are None when suppressed."""

    key: str  # the stored value as text: "4", "very_good", "yes"
    value: Value | None  # the stored value (None for the skipped cell)
    kind: CellKind
    count: int | None
    share: Proportion | None  # of answered (answers, don't know, other); of responses (skips)
    suppressed: bool


@dataclass(frozen=True)
class Figure:
    """A count that may be suppressed (``value`` None, ``suppressed`` True)."""

    value: int | None
    suppressed: bool


@dataclass(frozen=True)
class StepResult:
    step_id: str
    kind: StepKind
    measure: Measure | None
    responses: Figure  # answered + skipped
    answered: Figure
    distribution: tuple[Cell, ...]
    positive: Proportion | None  # csat/smiley: top two; fft: % positive
    negative: Proportion | None  # fft: % negative
    nps: NetScore | None
    mean: Mean | None
    suppressed: tuple[str, ...]  # names of the figures hidden: "positive", "mean" ...

    @property
    def headline(self) -> Headline | None:
        """The step's main figure: the measure, else the mean (None: none or hidden)."""
        if self.measure is Measure.NPS and self.nps is not None:
            return Headline("nps", self.nps.score, self.nps.low, self.nps.high)
        if self.measure is not None and self.positive is not None:
            p = self.positive
            return Headline(self.measure.value, p.percent, 100 * p.low, 100 * p.high)
        mean = self.mean
        if self.measure is None and mean is not None and mean.low is not None:
            return Headline("mean", mean.mean, mean.low, mean.high or mean.low)
        return None


@dataclass(frozen=True)
class Headline:
    name: str  # "csat", "fft", "smiley" (percent), "nps" (points), "mean"
    value: float
    low: float
    high: float


def measure_of(step: Step) -> Measure | None:
    """The measure a step's results are summarised by: its ``metric:`` when it names
    one of ``Measure``, else NPS steps ``nps`` and smiley scales ``smiley``."""
    if step.metric is not None:
        try:
            return Measure(step.metric)
        except ValueError:
            pass
    if step.kind is StepKind.NPS:
        return Measure.NPS
    if step.kind is StepKind.SCALE and step.scale_style is ScaleStyle.SMILEY:
        return Measure.SMILEY
    return None


def defined_values(step: Step) -> tuple[Value, ...]:
    """The answer values a step defines, in display order (numbers: none fixed)."""
    if step.kind is StepKind.SCALE:
        return tuple(range(step.scale_min, step.scale_max + 1))
    if step.kind is StepKind.NPS:
        return tuple(range(11))
    if step.kind is StepKind.YES_NO:
        return ("yes", "no")
    if step.kind is StepKind.CHOICE:
        return tuple(option.id for option in step.options)
    return ()


def scores_of(step: Step) -> dict[Value, int | None] | None:
    """Value -> score for the steps whose answers score (None for the others).

    Scales, NPS and numbers score their own value; a choice scores its options'
    ``score:`` (None for "don't know") when at least one option has one.
    """
    if step.kind in (StepKind.SCALE, StepKind.NPS):
        return {value: int(value) for value in defined_values(step)}
    if step.kind is StepKind.CHOICE and any(o.score is not None for o in step.options):
        return {option.id: option.score for option in step.options}
    return None


def is_countable(step: Step) -> bool:
    """Steps whose answers are counted per value (not free text, not messages)."""
    return step.kind not in (StepKind.TEXT, StepKind.MESSAGE)


def step_result(step: Step, tally: Tally) -> StepResult:
    """The results of one step from its tally, with small numbers suppressed."""
    scores = scores_of(step)
    cells = _cells(step, tally, scores)
    responses = tally.responses
    answered = tally.answered
    group = {cell.key: (cell.count or 0) for cell in cells}
    hidden = hide_small(group)
    answered_keys = {cell.key for cell in cells if cell.kind is not CellKind.SKIPPED}
    measure = measure_of(step)
    hidden_names: list[str] = []

    def allowed(name: str, *key_sets: set[str], any_hidden: bool = False) -> bool:
        blocked = any(
            (hidden & keys and not any_hidden and hidden & keys != hidden)
            or (any_hidden and hidden & keys)
            for keys in key_sets
        )
        if blocked:
            hidden_names.append(name)
        return not blocked

    positive = negative = None
    nps = None
    mean = None
    numeric = _numeric_counts(cells, scores)
    by_score = {cell.key: _score(cell, scores) for cell in cells}

    if responses >= SMALL and answered > 0:
        top = _top_two_keys(step, scores, by_score)
        if measure is Measure.FFT:
            denominator = answered_keys  # "don't know" counts; skips do not
            good = {k for k, s in by_score.items() if s in (4, 5)}
            bad = {k for k, s in by_score.items() if s in (1, 2)}
            if allowed("positive", good, denominator):
                positive = wilson(_sum(group, good), answered)
            if allowed("negative", bad, denominator):
                negative = wilson(_sum(group, bad), answered)
        elif measure in (Measure.CSAT, Measure.SMILEY) and top:
            scored = {k for k in answered_keys if by_score.get(k) is not None}
            total = _sum(group, scored)
            if total > 0 and allowed("positive", top, scored):
                positive = wilson(_sum(group, top), total)
        elif measure is Measure.NPS:
            scored = {k for k in answered_keys if by_score.get(k) is not None}
            promoters = {k for k in scored if (by_score[k] or 0) >= 9}
            detractors = {k for k in scored if (by_score[k] or 0) <= 6}
            total = _sum(group, scored)
            if total > 0 and allowed("nps", promoters, detractors, scored):
                nps = net_score(_sum(group, promoters), _sum(group, detractors), total)
        if numeric:
            numeric_keys = {k for k in answered_keys if by_score.get(k) is not None}
            if allowed("mean", numeric_keys, any_hidden=True):
                mean = mean_of(numeric)

    show_answered = responses >= SMALL and allowed("answered", answered_keys)
    # A share reveals its base: shares of answered only where "answered" is shown.
    base = answered if show_answered else 0
    public = tuple(_public_cell(cell, hidden, responses, base) for cell in cells)
    return StepResult(
        step_id=step.id,
        kind=step.kind,
        measure=measure,
        responses=_figure(responses, responses < SMALL),
        answered=_figure(answered, responses < SMALL or not show_answered),
        distribution=public,
        positive=positive,
        negative=negative,
        nps=nps,
        mean=mean,
        suppressed=tuple(dict.fromkeys(hidden_names)),
    )


def hide_small(counts: Mapping[str, int]) -> set[str]:
    """The keys whose counts are hidden: every count 1..4 (primary suppression), then the
    smallest non-zero counts, while the hidden ones could be worked out from the total
    (only one hidden, or hidden counts adding up to less than 5). With a total of 1..4
    every non-zero count is hidden."""
    total = sum(counts.values())
    nonzero = [key for key, count in counts.items() if count > 0]
    if 0 < total < SMALL:
        return set(nonzero)
    hidden = {key for key in nonzero if counts[key] < SMALL}
    order = sorted(nonzero, key=lambda key: (counts[key], list(counts).index(key)))
    while hidden and (len(hidden) < 2 or _sum(counts, hidden) < SMALL):
        more = [key for key in order if key not in hidden]
        if not more:
            break
        hidden.add(more[0])
    return hidden


def _cells(step: Step, tally: Tally, scores: dict[Value, int | None] | None) -> list[Cell]:
    defined = defined_values(step)
    counts = dict(tally.counts)
    cells: list[Cell] = []
    for value in defined:
        kind = CellKind.ANSWER
        if scores is not None and step.kind is StepKind.CHOICE and scores.get(value) is None:
            kind = CellKind.DONT_KNOW
        cells.append(_raw_cell(value, kind, counts.pop(value, 0)))
    others: Sequence[Value] = sorted(counts, key=lambda v: (isinstance(v, str), v))
    kind = CellKind.ANSWER if step.kind is StepKind.NUMBER else CellKind.OTHER
    for value in others:
        cells.append(_raw_cell(value, kind, counts[value]))
    if is_countable(step) or step.kind is StepKind.TEXT:
        cells.append(Cell("skipped", None, CellKind.SKIPPED, tally.skipped, None, False))
    return cells


def _raw_cell(value: Value, kind: CellKind, count: int) -> Cell:
    return Cell(str(value), value, kind, count, None, False)


def _score(cell: Cell, scores: dict[Value, int | None] | None) -> int | None:
    if cell.kind in (CellKind.SKIPPED, CellKind.DONT_KNOW) or cell.value is None:
        return None
    if scores is None:
        return cell.value if isinstance(cell.value, int) else None
    return scores.get(cell.value)


def _numeric_counts(
    cells: Sequence[Cell], scores: dict[Value, int | None] | None
) -> dict[int, int]:
    numeric: dict[int, int] = {}
    for cell in cells:
        score = _score(cell, scores)
        if score is not None and cell.count:
            numeric[score] = numeric.get(score, 0) + cell.count
    return numeric


def _top_two_keys(
    step: Step, scores: dict[Value, int | None] | None, by_score: dict[str, int | None]
) -> set[str]:
    """The answers in the top two points of the step's scale."""
    if scores is None:
        return set()
    known = [s for s in scores.values() if s is not None]
    if not known:
        return set()
    best = max(known)
    return {key for key, score in by_score.items() if score is not None and score >= best - 1}


def _sum(counts: Mapping[str, int], keys: Iterable[str]) -> int:
    return sum(counts.get(key, 0) for key in keys)


def _figure(value: int, suppressed: bool) -> Figure:
    return Figure(None, True) if suppressed and value > 0 else Figure(value, False)


def _public_cell(cell: Cell, hidden: set[str], responses: int, answered: int) -> Cell:
    count = cell.count or 0
    if cell.key in hidden:
        return Cell(cell.key, cell.value, cell.kind, None, None, True)
    base = responses if cell.kind is CellKind.SKIPPED else answered
    share = wilson(count, base) if base > 0 else None
    return Cell(cell.key, cell.value, cell.kind, count, share, False)


def main_step(flow: Flow) -> Step | None:
    """The step a flow's results lead with (trends, comment scores): the first step with
    a measure, else the first step whose answers score."""
    for step in flow.steps:
        if measure_of(step) is not None:
            return step
    for step in flow.steps:
        if scores_of(step) is not None:
            return step
    return None


def answer_label(flow: Flow, step: Step, value: Value, language: str) -> str:
    """A stored answer as staff read it in ``language``: the option's label, "Yes"/"No",
    or the value itself (numbers, values an older flow version defined)."""
    if step.kind is StepKind.CHOICE:
        for option in step.options:
            if option.id == value:
                return flow.text(option.label, language)
    if step.kind is StepKind.YES_NO and value in ("yes", "no"):
        return system_text(str(value), language)
    return str(value)
