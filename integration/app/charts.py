"""Charts as server-rendered SVG: no script, no library, nothing fetched.

Each chart is drawn with a title and a description for screen readers, and the
page always prints the same numbers in a table next to it. Colours come from the
stylesheet (classes), so contrast is decided in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from integration.reports.insights import week_of

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 16, 40


@dataclass(frozen=True)
class Series:
    key: str  # the trend key: new_share or won_share
    label: str
    css: str  # the class that gives its colour


SERIES = (
    Series("new_share", "New pipeline on strategy", "s-new"),
    Series("won_share", "Bookings on strategy", "s-won"),
)


def _x(index: int, count: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (span * index / (count - 1) if count > 1 else span / 2)


def _y(share: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - max(0.0, min(1.0, share)))


def trend_chart(trend: Sequence[dict[str, Any]], baseline: dict[str, Any] | None) -> Markup:
    """Weekly share on strategy of new pipeline and bookings, the baseline as dashed
    lines over a shaded band of its weeks, and the weeks the live rules changed."""
    weeks = [w["week"] for w in trend]
    parts = [_grid(), _baseline_band(weeks, baseline)]
    parts += [_ruleset_marks(trend)]
    for series in SERIES:
        parts.append(_line(trend, series))
        if baseline and baseline.get(series.key) is not None:
            y = _y(baseline[series.key])
            parts.append(
                f'<line class="base {series.css}" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
                f'y1="{y:.1f}" y2="{y:.1f}"/>'
            )
    parts.append(_week_labels(weeks))
    desc = _describe(trend, baseline)
    return Markup(
        f'<svg class="chart trend" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="trend-title trend-desc" preserveAspectRatio="xMidYMid meet">'
        f'<title id="trend-title">Share on strategy, week by week</title>'
        f'<desc id="trend-desc">{escape(desc)}</desc>{"".join(parts)}</svg>'
    )


def _grid() -> str:
    lines = []
    for pct in (0, 25, 50, 75, 100):
        y = _y(pct / 100)
        lines.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{pct}%</text>'
        )
    return "".join(lines)


def _baseline_band(weeks: list[str], baseline: dict[str, Any] | None) -> str:
    if not baseline or not weeks:
        return ""
    first, last = week_of(baseline["from"]), week_of(baseline["to"])
    inside = [i for i, week in enumerate(weeks) if first <= week <= last]
    if not inside:
        return ""
    half = (WIDTH - LEFT - RIGHT) / max(len(weeks) - 1, 1) / 2
    x1 = max(LEFT, _x(inside[0], len(weeks)) - half)
    x2 = min(WIDTH - RIGHT, _x(inside[-1], len(weeks)) + half)
    return (
        f'<rect class="band" x="{x1:.1f}" y="{TOP}" width="{max(x2 - x1, 2):.1f}" '
        f'height="{HEIGHT - TOP - BOTTOM}"/>'
        f'<text class="band-label" x="{x1 + 4:.1f}" y="{TOP + 12}">baseline</text>'
    )


def _ruleset_marks(trend: Sequence[dict[str, Any]]) -> str:
    marks = []
    for i, week in enumerate(trend):
        if week.get("ruleset_changed"):
            x = _x(i, len(trend))
            marks.append(
                f'<line class="rules-mark" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" '
                f'y2="{HEIGHT - BOTTOM}"><title>Rules changed in {escape(week["week"])}'
                f"</title></line>"
                f'<text class="rules-label" x="{x + 3:.1f}" y="{HEIGHT - BOTTOM - 4}">rules</text>'
            )
    return "".join(marks)


def _line(trend: Sequence[dict[str, Any]], series: Series) -> str:
    points = [
        (_x(i, len(trend)), _y(w[series.key]), w)
        for i, w in enumerate(trend)
        if w.get(series.key) is not None
    ]
    if not points:
        return ""
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y, _) in enumerate(points)
    )
    dots = "".join(
        f'<circle class="dot {series.css}" cx="{x:.1f}" cy="{y:.1f}" r="3">'
        f"<title>{escape(w['week'])}: {escape(series.label)} {w[series.key] * 100:.0f}%</title>"
        f"</circle>"
        for x, y, w in points
    )
    return f'<path class="series {series.css}" d="{path}"/>{dots}'


def _week_labels(weeks: list[str]) -> str:
    if not weeks:
        return ""
    step = max(1, len(weeks) // 8)
    shown = set(range(0, len(weeks), step))
    if len(weeks) - 1 - max(shown) >= step / 2:  # the last week, unless it would overlap
        shown.add(len(weeks) - 1)
    last = len(weeks) - 1
    return "".join(
        f'<text class="axis" x="{_x(i, len(weeks)):.1f}" y="{HEIGHT - BOTTOM + 16}" '
        f'text-anchor="{"end" if i == last and last else "middle"}">{escape(weeks[i][2:])}</text>'
        for i in sorted(shown)
    )


def _describe(trend: Sequence[dict[str, Any]], baseline: dict[str, Any] | None) -> str:
    if not trend:
        return "No weeks with data yet."
    last = trend[-1]
    said = [f"{len(trend)} weeks from {trend[0]['week']} to {last['week']}."]
    for series in SERIES:
        if last.get(series.key) is not None:
            said.append(f"{series.label} in {last['week']}: {last[series.key] * 100:.0f}%.")
        if baseline and baseline.get(series.key) is not None:
            said.append(f"Baseline: {baseline[series.key] * 100:.0f}%.")
    changed = [w["week"] for w in trend if w.get("ruleset_changed")]
    if changed:
        said.append(f"Rules changed in {', '.join(changed)}.")
    return " ".join(said)


def share_bar(share: float | None, baseline: float | None, flagged: bool) -> Markup:
    """A small bar for a table cell: the share, a tick at the group's own baseline."""
    width = 120
    filled = 0 if share is None else width * max(0.0, min(1.0, share))
    tick = ""
    if baseline is not None:
        x = width * max(0.0, min(1.0, baseline))
        tick = f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="14"/>'
    css = "bar flag" if flagged else "bar"
    return Markup(
        f'<svg class="minibar" viewBox="0 0 {width} 14" aria-hidden="true" focusable="false">'
        f'<rect class="track" x="0" y="3" width="{width}" height="8"/>'
        f'<rect class="{css}" x="0" y="3" width="{filled:.1f}" height="8"/>{tick}</svg>'
    )


def amount_bar(amount: float, largest: float) -> Markup:
    """A bar for a pattern row, scaled to the largest amount in its list."""
    width = 120
    filled = width * (amount / largest) if largest else 0
    return Markup(
        f'<svg class="minibar" viewBox="0 0 {width} 14" aria-hidden="true" focusable="false">'
        f'<rect class="bar off" x="0" y="3" width="{filled:.1f}" height="8"/></svg>'
    )
