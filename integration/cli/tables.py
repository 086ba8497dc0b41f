"""Terminal output with rich: reports, explanations, demo summaries, plans.

Only presentation lives here; the figures come from :mod:`integration.reports.figures`
and the store.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from integration.pipeline.processor import BatchOutcome
from integration.reports.figures import Report


def pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def money(value: float) -> str:
    return f"{value:,.0f}"


def report_table(report: Report) -> Table:
    title = (
        f"On-strategy share by {report.by} (on: On Strategy deals; vs base: points against the "
        "first week measured; by amt: share of amount; exc.: approved exceptions; comp: comp "
        "eligible; warn: deals with a warning)"
    )
    table = Table(title=title, title_justify="left")
    for column in ("", "deals", "on", "share", "vs base", "by amt", "exc.", "comp", "warn"):
        table.add_column(column, justify="left" if not column else "right", no_wrap=not column)
    for line in [*report.lines, report.total]:
        table.add_row(
            line.group,
            str(line.opportunities),
            str(line.on_strategy),
            pct(line.share),
            _points(line),
            pct(line.share_by_amount),
            str(line.approved_exceptions),
            pct(line.comp_share),
            str(line.warnings),
            style="bold" if line is report.total else None,
        )
    return table


def _points(line: Any) -> str:
    """Change of the on-strategy share against the group's baseline, in points."""
    if line.baseline_share is None:
        return "-"
    return f"{round((line.share - line.baseline_share) * 100):+d} pts"


def trend_table(report: Report) -> Table:
    table = Table(
        title="Trend (latest decision per deal at the end of each week)", title_justify="left"
    )
    for column in ("week", "deals", "share", "share by amount", "vs baseline"):
        table.add_column(column, justify="right")
    base = report.baseline
    for week in report.trend:
        delta = (week.share - base.share) * 100 if base else 0.0
        table.add_row(
            week.week,
            str(week.opportunities),
            pct(week.share),
            pct(week.share_by_amount),
            f"{delta:+.0f} pts",
        )
    return table


def coaching_table(report: Report) -> Table:
    table = Table(title="Coaching tasks by manager and rep", title_justify="left")
    for column in ("manager", "rep", "open", "queued", "completed", "closed"):
        table.add_column(column, justify="right" if column not in ("manager", "rep") else "left")
    for line in report.coaching:
        table.add_row(
            line.manager,
            line.rep,
            str(line.open),
            str(line.queued),
            str(line.completed),
            str(line.closed),
        )
    return table


def print_report(console: Console, report: Report, fmt: str) -> None:
    if fmt == "json":
        console.print_json(json.dumps(report.as_dict()))
        return
    if fmt == "csv":
        console.out(report_csv(report), end="")
        return
    console.print(report_table(report))
    if report.trend:
        console.print(trend_table(report))
    if report.coaching:
        console.print(coaching_table(report))


def report_csv(report: Report) -> str:
    buffer = io.StringIO()
    rows = [line.as_dict() for line in [*report.lines, report.total]]
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["group"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def plan_table(outcome: BatchOutcome, names: dict[str, str] | None = None) -> Table:
    """Planned field changes per rep (dry runs), then the changes themselves."""
    table = Table(title="Planned changes", title_justify="left")
    for column in ("rep", "opportunity", "field", "now", "will be"):
        table.add_column(column)
    for item in sorted(outcome.planned, key=lambda p: (p.facts.owner.name, p.facts.opportunity.id)):
        for field_name, (old, new) in item.changes.items():
            table.add_row(
                item.facts.owner.name or item.facts.owner.id,
                f"{item.facts.opportunity.id} {item.facts.opportunity.name}"[:60],
                field_name,
                _short(old),
                _short(new),
            )
    return table


def plan_by_rep(outcome: BatchOutcome) -> Table:
    table = Table(title="Planned changes by rep", title_justify="left")
    for column in ("rep", "deals changing", "fields", "new coaching tasks (before the cap)"):
        table.add_column(column, justify="left" if column == "rep" else "right")
    deals, fields, tasks = Counter(), Counter(), Counter()
    for item in outcome.planned:
        rep = item.facts.owner.name or item.facts.owner.id or "(no owner)"
        deals[rep] += 1
        fields[rep] += len(item.changes)
        tasks[rep] += len(item.decision.coaching)
    for rep in sorted(deals):
        table.add_row(rep, str(deals[rep]), str(fields[rep]), str(tasks[rep]))
    return table


def _short(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def history_table(rows: Sequence[Any]) -> Table:
    table = Table(title="History", title_justify="left")
    for column in ("when", "trigger", "fit", "comp", "ruleset", "targets", "changed"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.decided_at.strftime("%Y-%m-%d %H:%M:%S"),
            row.trigger,
            row.fit,
            "yes" if row.comp_eligible else "no",
            row.ruleset_version,
            row.target_list_version,
            "yes" if row.changed else "no",
        )
    return table


def print_outcome(console: Console, outcome: BatchOutcome, dry_run: bool) -> None:
    """What a sweep did, or (dry run) what it would do, by rep and deal."""
    if dry_run:
        console.print(plan_by_rep(outcome))
        console.print(plan_table(outcome))
        console.print(
            f"Dry run: {outcome.evaluated} evaluated, {len(outcome.planned)} would "
            "change; nothing was written."
        )
        return
    created = len(outcome.coaching.created)
    console.print(
        f"{outcome.evaluated} evaluated, {outcome.changed} changed, {outcome.failed} "
        f"failed; coaching tasks: {created} created, "
        f"{len(outcome.coaching.closed)} closed."
    )
