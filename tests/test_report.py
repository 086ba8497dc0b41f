"""The report: shares by group, the weekly trend, and the baseline each group is held to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from integration.reports.figures import build

WEEK1 = datetime(2026, 11, 2, 9, tzinfo=UTC)  # ISO week 45
WEEK2 = datetime(2026, 11, 10, 9, tzinfo=UTC)  # ISO week 46


@dataclass
class Row:
    """A decision as the store returns it (only what the report reads)."""

    opportunity_id: str
    fit: str
    decided_at: datetime
    team: str = "East"
    owner_name: str = "Dana"
    owner_id: str = "U-1"
    amount: float = 100.0
    comp_eligible: bool = False
    warning: str = ""
    crm: str = "sandbox"


def test_groups_are_measured_against_their_first_week():
    history = [
        Row("A", "Off Strategy", WEEK1),
        Row("B", "Off Strategy", WEEK1),
        Row("C", "On Strategy", WEEK1, team="West"),
        Row("A", "On Strategy", WEEK2),  # East improves in week 2
    ]
    latest = {r.opportunity_id: r for r in history}.values()
    report = build(latest, history, [], by="team")
    east = next(line for line in report.lines if line.group == "East")
    assert (east.share, east.baseline_share) == (0.5, 0.0)
    assert east.as_dict()["change_vs_baseline"] == 0.5
    assert [(w.week, w.share) for w in report.trend] == [("2026-W45", 0.3333), ("2026-W46", 0.6667)]
    assert report.baseline.week == "2026-W45"
    assert report.total.baseline_share == 0.3333


def test_share_by_amount_and_comp_share():
    rows = [
        Row("A", "On Strategy", WEEK1, amount=900.0, comp_eligible=True),
        Row("B", "Off Strategy (Approved)", WEEK1, amount=100.0, warning="late"),
    ]
    counting = {"On Strategy": "on", "Off Strategy (Approved)": "approved"}
    report = build(rows, rows, [], by="owner", counts_as=lambda t: counting.get(t, "off"))
    assert (report.total.share, report.total.share_by_amount) == (0.5, 0.9)
    assert (report.total.comp_share, report.total.approved_exceptions) == (0.5, 1)
    assert report.total.warnings == 1
