"""Terminal output with rich: reports, explanations, demo summaries, plans.

Only presentation lives here; the insights have their own module,
:mod:`integration.cli.insight_tables`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from integration.pipeline.processor import BatchOutcome


def pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def money(value: float) -> str:
    return f"{value:,.0f}"


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
