"""The insights: one computation behind ``onstrategy report``, the API and the dashboard.

"Make the invisible visible": the share of the business that is on strategy
(open pipeline, won, lost) by count and amount, the win rates on and off
strategy, the trend of new pipeline and bookings week by week against a
baseline, the red flags, the reps to learn from and the seeds' lists. Pure: it
takes the judged deals (:mod:`integration.reports.deals`) and returns the
report as a plain dictionary in the shape the contract fixes; views only
render it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from integration.reports.deals import Deal
from integration.reports.lists import (
    coaching_lines,
    learn_from,
    patterns,
    red_flags,
    top_lists,
    traction,
)
from integration.reports.tally import Flow, Line, change

STATUSES = ("open", "won", "lost", "all")
GROUPINGS = ("team", "owner")
BASELINE_WEEKS = 13


def quarter_start(today: date) -> date:
    return date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)


@lru_cache(maxsize=8192)
def week_of(day: str) -> str:
    """ISO week label (``2026-W03``) of a ``YYYY-MM-DD`` date; "" when not a date."""
    try:
        year, week, _ = date.fromisoformat(day[:10]).isocalendar()
    except ValueError:
        return ""
    return f"{year}-W{week:02d}"


def week_monday(label: str) -> date:
    return date.fromisocalendar(int(label[:4]), int(label[6:]), 1)


@dataclass(frozen=True)
class Params:
    """What a report is asked for; ``start``/``end`` are ``--from``/``--to``."""

    today: date
    status: str = "open"
    start: date | None = None
    end: date | None = None
    by: str = "team"
    baseline_from: date | None = None
    baseline_to: date | None = None
    red_flag_below: float = 30.0  # percent
    min_deals: int = 5
    live_version: str = ""
    changed_weeks: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {self.status!r}")
        if self.by not in GROUPINGS:
            raise ValueError(f"by must be one of {', '.join(GROUPINGS)}; got {self.by!r}")
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"--to ({self.end}) is before --from ({self.start})")
        if (self.baseline_from is None) != (self.baseline_to is None):
            raise ValueError("give both --baseline-from and --baseline-to, or neither")

    @property
    def period(self) -> tuple[str, str]:
        """Closed deals count when closed in this period (default: quarter to date)."""
        start = self.start or quarter_start(self.today)
        return start.isoformat(), (self.end or self.today).isoformat()

    @property
    def window(self) -> tuple[str, str]:
        """The trend's weeks: ``--from``..``--to`` when given, else every week with data."""
        start = self.start.isoformat() if self.start else ""
        return start, self.end.isoformat() if self.end else "9999-12-31"


def baseline_period(deals: Sequence[Deal], params: Params) -> tuple[str, str] | None:
    """The asked period, else the first 13 weeks with data (from its first Monday)."""
    if params.baseline_from and params.baseline_to:
        return params.baseline_from.isoformat(), params.baseline_to.isoformat()
    dates = [d.created_date for d in deals if d.created_date]
    dates += [d.close_date for d in deals if d.is_won and d.close_date]
    first = week_of(min(dates)) if dates else ""
    if not first:
        return None
    monday = week_monday(first)
    return monday.isoformat(), (monday + timedelta(weeks=BASELINE_WEEKS, days=-1)).isoformat()


class _Level:
    """Figures for one level (company, team or rep), group by group."""

    def __init__(self) -> None:
        self.lines: dict[str, Line] = {}
        self.weeks: dict[tuple[str, str], Flow] = defaultdict(Flow)
        self.baseline: dict[str, Flow] = defaultdict(Flow)
        self.since: dict[str, Flow] = defaultdict(Flow)
        self.window: dict[str, Flow] = defaultdict(Flow)
        self.closed: dict[str, Line] = {}

    def line(self, group: str) -> Line:
        line = self.lines.get(group)
        if line is None:
            line = self.lines[group] = Line(group)
        return line

    def closed_line(self, group: str) -> Line:
        line = self.closed.get(group)
        if line is None:
            line = self.closed[group] = Line(group)
        return line


@dataclass
class _Tally:
    """What one pass over the deals counts per rep, before the roll-up.

    Lines keyed by (team, rep): ``scope`` (the report's status), ``period`` (closed in
    the period), ``window`` (closed in the trend's weeks). Counts keyed by (team, rep,
    day): ``new`` is [created, created on strategy], ``won`` [amount, amount on strategy].
    """

    scope: dict[tuple[str, str], Line] = field(default_factory=dict)
    period: dict[tuple[str, str], Line] = field(default_factory=dict)
    window: dict[tuple[str, str], Line] = field(default_factory=dict)
    new: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    won: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)


class _Pass:
    """One pass over the deals into per-rep cells, then rolled up to teams and company.

    Each deal is added once (into its rep's line and the cell of its dates); teams and
    the company are sums of their reps, so the cost is one pass plus the cells.
    """

    def __init__(self, params: Params, baseline: tuple[str, str] | None) -> None:
        self.params = params
        self.period = params.period
        self.window = params.window
        self.baseline = baseline or ("", "")
        self.levels = {"company": _Level(), "team": _Level(), "owner": _Level()}
        self.open: list[Deal] = []
        self.team_of: dict[str, str] = {}
        self.on_deals: dict[str, list[Deal]] = defaultdict(list)
        self._buckets: dict[str, tuple[str, bool, bool, bool]] = {}

    def _bucket(self, day: str) -> tuple[str, bool, bool, bool]:
        """(week in the window or "", in the window, in the baseline, after the baseline)."""
        w_from, w_to = self.window
        b_from, b_to = self.baseline
        inside = w_from <= day <= w_to
        bucket = (week_of(day) if inside else "", inside, b_from <= day <= b_to, day > b_to)
        self._buckets[day] = bucket
        return bucket

    def run(self, deals: Iterable[Deal]) -> None:
        tally = self._tally(deals)
        cells = self._cells(tally.new, tally.won)
        self._roll_up(tally.scope, tally.period, tally.window, cells)

    def _tally(self, deals: Iterable[Deal]) -> _Tally:
        """The one pass over the deals: each is added to its rep's lines and dated counts.

        Open deals are kept for the top lists and on-strategy ones per rep for the reps
        to learn from, in the same pass.
        """
        tally = _Tally()
        scope, new = tally.scope, tally.new
        on_deals, open_deals = self.on_deals, self.open
        open_in_scope = self.params.status in ("open", "all")
        for deal in deals:
            team, owner = deal.team, deal.owner
            on = deal.counts_as == "on"
            if deal.is_closed:
                in_scope = self._tally_closed(deal, on, tally)
            else:
                in_scope = open_in_scope
                open_deals.append(deal)
            if in_scope:
                line = scope.get((team, owner)) or _new(scope, team, owner)
                line.add(deal)
            if on:
                on_deals[owner].append(deal)
            if deal.created_date:
                count = new.get((team, owner, deal.created_date))
                if count is None:
                    count = new[(team, owner, deal.created_date)] = [0, 0]
                count[0] += 1
                count[1] += on
        return tally

    def _tally_closed(self, deal: Deal, on: bool, tally: _Tally) -> bool:
        """Add a closed deal to the period's and the window's lines and, when won, its
        amount to its close day; True when the report's status covers it in the period."""
        team, owner, closed = deal.team, deal.owner, deal.close_date
        p_from, p_to = self.period
        w_from, w_to = self.window
        in_period = p_from <= closed <= p_to
        if in_period:
            line = tally.period.get((team, owner)) or _new(tally.period, team, owner)
            line.add_closed(deal)
        if w_from <= closed <= w_to:
            line = tally.window.get((team, owner)) or _new(tally.window, team, owner)
            line.add_closed(deal)
        if deal.is_won and closed:
            cell = tally.won.get((team, owner, closed))
            if cell is None:
                cell = tally.won[(team, owner, closed)] = [0.0, 0.0]
            cell[0] += deal.amount
            if on:
                cell[1] += deal.amount
        return in_period and self.params.status in ("won" if deal.is_won else "lost", "all")

    def _cells(
        self,
        new: dict[tuple[str, str, str], list[int]],
        won: dict[tuple[str, str, str], list[float]],
    ) -> dict[tuple[str, str, tuple], list[float]]:
        """Per rep and date bucket: [new deals, new on strategy, won amount, won on strategy].

        Counted per day first, then bucketed once per distinct day: far fewer days
        than deals, so the week and period checks run once per day, not per deal.
        """
        cells: dict[tuple[str, str, tuple], list[float]] = defaultdict(lambda: [0, 0, 0.0, 0.0])
        buckets = self._buckets
        for (team, owner, day), (made, made_on) in new.items():
            cell = cells[(team, owner, buckets.get(day) or self._bucket(day))]
            cell[0] += made
            cell[1] += made_on
        for (team, owner, day), (amount, amount_on) in won.items():
            cell = cells[(team, owner, buckets.get(day) or self._bucket(day))]
            cell[2] += amount
            cell[3] += amount_on
        return cells

    def _roll_up(self, scope: dict, period: dict, window: dict, cells: dict) -> None:
        levels = self.levels
        for (team, owner), line in scope.items():
            for level, group in (("company", "All"), ("team", team), ("owner", owner)):
                levels[level].line(group).merge(line)
        for (team, owner), line in period.items():
            self.team_of[owner] = team
            for level, group in (("company", "All"), ("team", team), ("owner", owner)):
                levels[level].line(group).merge_closed(line)
        for (team, owner), line in window.items():
            for level, group in (("company", "All"), ("team", team), ("owner", owner)):
                levels[level].closed_line(group).merge_closed(line)
        for (team, owner, (week, inside, before, after)), counts in cells.items():
            self.team_of.setdefault(owner, team)
            for level, group in (("company", "All"), ("team", team), ("owner", owner)):
                figures = levels[level]
                if inside:
                    figures.weeks[(group, week)].add_counts(counts)
                    figures.window[group].add_counts(counts)
                    if after:
                        figures.since[group].add_counts(counts)
                if before:
                    figures.baseline[group].add_counts(counts)


def _new(lines: dict[tuple[str, str], Line], team: str, owner: str) -> Line:
    line = lines[(team, owner)] = Line(owner)
    return line


def build_report(
    deals: Sequence[Deal],
    params: Params,
    tasks: Iterable[tuple[str, str, str, str, int]] = (),
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The whole report for ``params``, as ``report --format json`` prints it."""
    baseline = baseline_period(deals, params)
    run = _Pass(params, baseline)
    run.run(deals)
    levels = run.levels
    company, by = levels["company"], levels[params.by]
    p_from, p_to = run.period
    lines = [_line(by, g, line) for g, line in by.lines.items() if line.deals]
    lines.sort(key=lambda line: (-(line["share"] or 0.0), line["group"]))
    lists = top_lists(run.open)
    return {
        "scope": {
            "status": params.status,
            "from": p_from,
            "to": p_to,
            "live_version": params.live_version,
            "by": params.by,
            "today": params.today.isoformat(),
        },
        "total": _line(company, "All", company.lines.get("All") or Line("All")),
        "lines": lines,
        "trend": _weeks(company, params.changed_weeks).get("All", []),
        "trends": {level: _weeks(levels[level], params.changed_weeks) for level in GROUPINGS},
        "baseline": _baseline(company, baseline),
        "red_flags": red_flags(levels, params.red_flag_below),
        "learn_from": learn_from(levels, run.team_of, run.on_deals, params),
        "patterns": patterns(run.open),
        **lists,
        "traction": traction(run.on_deals, run.period, params.status),
        "coaching": coaching_lines(tasks, names or {}),
    }


def _line(level: _Level, group: str, line: Line) -> dict[str, Any]:
    """A group's figures, and its new pipeline and bookings against its own baseline."""
    data = line.as_dict()
    before, since = level.baseline.get(group) or Flow(), level.since.get(group) or Flow()
    data.update(
        baseline_new_share=before.new_share,
        baseline_won_share=before.won_share,
        new_share=since.new_share,
        won_share=since.won_share,
        new_share_change=change(since.new_share, before.new_share),
        won_share_change=change(since.won_share, before.won_share),
    )
    return data


def _weeks(level: _Level, changed: frozenset[str]) -> dict[str, list[dict[str, Any]]]:
    """Each group's weeks in order: new pipeline and bookings, and whether the rules changed."""
    by_group: dict[str, list[dict[str, Any]]] = {}
    for (group, week), flow in sorted(level.weeks.items()):
        row = {"week": week, **flow.as_dict(), "ruleset_changed": week in changed}
        by_group.setdefault(group, []).append(row)
    return by_group


def _baseline(company: _Level, period: tuple[str, str] | None) -> dict[str, Any] | None:
    if period is None:
        return None
    flow = company.baseline.get("All") or Flow()
    return {"from": period[0], "to": period[1], **flow.as_dict()}
