"""Server-rendered SVG charts for the result pages: geometry only, drawn by the
templates (``dashboard/_charts.html``) with a ``<title>``, a ``<desc>`` and the same
numbers in a table beside each chart. No script, no style attributes (the CSP)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.reports import TrendPoint

WIDTH = 640
HEIGHT = 240
LEFT = 48  # room for the y axis labels
RIGHT = 12
TOP = 12
BOTTOM = 36  # room for the x axis labels


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    lines: tuple[str, ...]  # polyline "x,y x,y" per run of periods with a value
    bands: tuple[str, ...]  # polygon points of the 95% band, per run
    dots: tuple[tuple[float, float], ...]
    y_ticks: tuple[tuple[float, str], ...]  # (y, label)
    x_ticks: tuple[tuple[float, str], ...]  # (x, label)
    baseline: float  # y of the axis
    left: int
    right: int


def _range(name: str | None, points: Sequence[TrendPoint]) -> tuple[float, float]:
    if name in ("csat", "fft", "smiley"):
        return 0.0, 100.0
    if name == "nps":
        return -100.0, 100.0
    values = [v for p in points if p.headline for v in (p.headline.low, p.headline.high)]
    if not values:
        return 0.0, 1.0
    low, high = math.floor(min(values)), math.ceil(max(values))
    return (low, high) if high > low else (low, low + 1.0)


def line_chart(name: str | None, points: Sequence[TrendPoint]) -> LineChart:
    """The headline per period as a line, its 95% interval as a band; periods without a
    value (no answers, or fewer than 5) break the line."""
    low, high = _range(name, points)
    inner_w = WIDTH - LEFT - RIGHT
    inner_h = HEIGHT - TOP - BOTTOM
    count = max(len(points), 1)

    def x(index: int) -> float:
        return round(LEFT + (inner_w * (index + 0.5) / count), 1)

    def y(value: float) -> float:
        return round(TOP + inner_h * (high - value) / (high - low), 1)

    runs: list[list[tuple[int, TrendPoint]]] = [[]]
    for index, point in enumerate(points):
        if point.headline is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((index, point))
    lines, bands, dots = [], [], []
    for run in runs:
        if not run:
            continue
        line = [(x(i), y(p.headline.value)) for i, p in run if p.headline]
        lines.append(" ".join(f"{a},{b}" for a, b in line))
        dots.extend(line)
        upper = [(x(i), y(p.headline.high)) for i, p in run if p.headline]
        lower = [(x(i), y(p.headline.low)) for i, p in reversed(run) if p.headline]
        if len(run) == 1:  # a lone period: a narrow band around its dot
            (cx, top), (_, bottom) = upper[0], lower[0]
            upper = [(cx - 4, top), (cx + 4, top)]
            lower = [(cx + 4, bottom), (cx - 4, bottom)]
        bands.append(" ".join(f"{a},{b}" for a, b in upper + lower))
    ticks = 4
    y_ticks = tuple(
        (y(low + (high - low) * k / ticks), _number(low + (high - low) * k / ticks))
        for k in range(ticks + 1)
    )
    every = max(1, math.ceil(len(points) / 6))
    x_ticks = tuple((x(i), p.label) for i, p in enumerate(points) if i % every == 0)
    return LineChart(
        WIDTH,
        HEIGHT,
        tuple(lines),
        tuple(bands),
        tuple(dots),
        y_ticks,
        x_ticks,
        float(HEIGHT - BOTTOM),
        LEFT,
        WIDTH - RIGHT,
    )


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{value:.1f}"
