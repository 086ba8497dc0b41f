"""The numbers sales leaders need, from the audit trail.

"If only 30% of the business is On Strategy, that's a red flag." The report
gives the on-strategy share by count and by amount, the comp-eligible share,
open warnings and coaching tasks, per rep or team, and the trend week by week
against the first week measured (the baseline). Pure functions over store
rows; rendering lives in :mod:`integration.report_render`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from integration.engine.ruleset import default_counts_as

#: How a tag counts (``on``, ``approved``, ``off``): the live ruleset's ``counts_as``.
CountsAs = Callable[[str], str]


@dataclass
class Line:
    """One group's figures (a rep, a team, or everyone)."""

    group: str
    opportunities: int = 0
    on_strategy: int = 0
    approved_exceptions: int = 0
    amount: float = 0.0
    on_strategy_amount: float = 0.0
    comp_eligible: int = 0
    warnings: int = 0
    baseline_share: float | None = None  # the group's share in the first week measured

    @property
    def share(self) -> float:
        return self.on_strategy / self.opportunities if self.opportunities else 0.0

    @property
    def share_by_amount(self) -> float:
        return self.on_strategy_amount / self.amount if self.amount else 0.0

    @property
    def comp_share(self) -> float:
        return self.comp_eligible / self.opportunities if self.opportunities else 0.0

    def add(self, row: Any, counts_as: CountsAs = default_counts_as) -> None:
        self.opportunities += 1
        self.amount += row.amount or 0.0
        kind = counts_as(row.fit or "")
        if kind == "on":
            self.on_strategy += 1
            self.on_strategy_amount += row.amount or 0.0
        elif kind == "approved":
            self.approved_exceptions += 1
        self.comp_eligible += bool(row.comp_eligible)
        self.warnings += bool(row.warning)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            share=round(self.share, 4),
            share_by_amount=round(self.share_by_amount, 4),
            comp_share=round(self.comp_share, 4),
            change_vs_baseline=None
            if self.baseline_share is None
            else round(self.share - self.baseline_share, 4),
        )
        return data


@dataclass
class Week:
    week: str
    share: float
    share_by_amount: float
    opportunities: int


@dataclass
class CoachingLine:
    manager: str
    rep: str
    open: int = 0
    queued: int = 0
    completed: int = 0
    closed: int = 0


@dataclass
class Report:
    by: str
    total: Line
    lines: list[Line]
    trend: list[Week] = field(default_factory=list)
    coaching: list[CoachingLine] = field(default_factory=list)

    @property
    def baseline(self) -> Week | None:
        return self.trend[0] if self.trend else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "total": self.total.as_dict(),
            "lines": [line.as_dict() for line in self.lines],
            "baseline": asdict(self.baseline) if self.baseline else None,
            "trend": [asdict(w) for w in self.trend],
            "coaching": [asdict(c) for c in self.coaching],
        }


def _group(row: Any, by: str) -> str:
    if by == "team":
        return row.team or "(no team)"
    return row.owner_name or row.owner_id or "(no owner)"


def build(
    latest: Iterable[Any],
    history: Iterable[Any],
    tasks: Iterable[tuple],
    by: str,
    counts_as: CountsAs = default_counts_as,
) -> Report:
    """The report from the latest decisions, the full history and the task summary.

    ``counts_as`` is the live ruleset's: which tags count as on strategy.
    """
    total = Line("All")
    groups: dict[str, Line] = {}
    for row in latest:
        total.add(row, counts_as)
        groups.setdefault(_group(row, by), Line(_group(row, by))).add(row, counts_as)
    weeks, baselines = weekly_trend(history, by, counts_as)
    for name, line in groups.items():
        line.baseline_share = baselines.get(name)
    total.baseline_share = weeks[0].share if weeks else None
    lines = sorted(groups.values(), key=lambda line: (-line.share, line.group))
    return Report(by, total, lines, weeks, coaching_lines(tasks))


@dataclass(frozen=True)
class _Seen:
    """What the trend keeps of a decision: enough to count it, nothing more."""

    fit: str
    amount: float
    comp_eligible: bool
    warning: str
    group: str


def weekly_trend(
    history: Iterable[Any], by: str = "owner", counts_as: CountsAs = default_counts_as
) -> tuple[list[Week], dict[str, float]]:
    """The share at the end of each ISO week (replaying decisions in order), and each
    group's share at the end of the first week: the baseline it is measured against."""
    state: dict[tuple[str, str], _Seen] = {}
    weeks: list[Week] = []
    baselines: dict[str, float] = {}
    current = None
    for row in history:
        year, week, _ = row.decided_at.isocalendar()
        label = f"{year}-W{week:02d}"
        if current is not None and label != current:
            weeks.append(_snapshot(current, state.values(), counts_as))
            baselines = baselines or _group_shares(state.values(), counts_as)
        current = label
        seen = _Seen(
            row.fit, row.amount or 0.0, bool(row.comp_eligible), row.warning or "", _group(row, by)
        )
        state[(row.crm, row.opportunity_id)] = seen
    if current is not None:
        weeks.append(_snapshot(current, state.values(), counts_as))
        baselines = baselines or _group_shares(state.values(), counts_as)
    return weeks, baselines


def _group_shares(rows: Iterable[_Seen], counts_as: CountsAs) -> dict[str, float]:
    lines: dict[str, Line] = {}
    for row in rows:
        lines.setdefault(row.group, Line(row.group)).add(row, counts_as)
    return {name: line.share for name, line in lines.items()}


def _snapshot(label: str, rows: Iterable[Any], counts_as: CountsAs) -> Week:
    line = Line(label)
    for row in rows:
        line.add(row, counts_as)
    return Week(label, round(line.share, 4), round(line.share_by_amount, 4), line.opportunities)


def coaching_lines(tasks: Iterable[tuple]) -> list[CoachingLine]:
    lines: dict[tuple[str, str], CoachingLine] = {}
    for _crm, manager, rep, status, count in tasks:
        line = lines.setdefault((manager, rep), CoachingLine(manager, rep))
        if hasattr(line, status):
            setattr(line, status, getattr(line, status) + count)
    return sorted(lines.values(), key=lambda c: (c.manager, c.rep))
