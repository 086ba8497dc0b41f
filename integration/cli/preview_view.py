"""How a rules preview is shown: summary first, then the details.

``table`` prints the summary and the 50 largest changes with full values;
``json`` is the contract's document (``changes`` streamed from the spool, so a
100,000-deal preview never sits in memory); ``csv`` has one row per changed
field. ``--out FILE`` writes the chosen format there instead of the terminal.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from integration.pipeline.preview import Change, Preview

CSV_COLUMNS = ("crm", "opportunity_id", "name", "owner", "amount", "field", "old", "new")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write_json(preview: Preview, changes: Iterable[Change], out: IO[str]) -> None:
    """The summary keys, then ``changes`` one by one (never all in memory)."""
    head = json.dumps(preview.summary(), indent=1)
    out.write(head[:-2] + ',\n "changes": [')
    first = True
    for change in changes:
        if not change.fields:
            continue  # re-evaluated for coaching only: no written field changes
        out.write(("\n  " if first else ",\n  ") + json.dumps(change.as_dict()))
        first = False
    out.write("\n ]\n}\n")


def _cell(value: Any) -> Any:
    """Text a spreadsheet would run as a formula is escaped with a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return "" if value is None else value


def write_csv(changes: Iterable[Change], out: IO[str]) -> None:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for change in changes:
        for name, (old, new) in change.fields.items():
            row = (change.crm, change.opportunity_id, change.name, change.owner, change.amount)
            writer.writerow([_cell(v) for v in (*row, name, old, new)])


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def print_summary(console: Console, preview: Preview) -> None:
    """The numbers an admin reads before publishing."""
    data = preview.summary()
    share = data["share"]
    console.print(
        f"Live version [bold]{preview.live_version}[/] -> draft [bold]{preview.draft_version}[/], "
        f"over {preview.opportunities:,} known opportunities ({preview.frozen:,} frozen, never "
        "changed)."
    )
    console.print(
        f"On-strategy share: {_pct(share['before'])} -> [bold]{_pct(share['after'])}[/] of deals, "
        f"{_pct(share['before_by_amount'])} -> [bold]{_pct(share['after_by_amount'])}[/] of amount."
    )
    console.print(_share_table("By team", data["share_by_team"]))
    if len(data["share_by_owner"]) <= 40:
        console.print(_share_table("By rep", data["share_by_owner"]))
    tags = Table(title="Tag changes", title_justify="left")
    for column in ("from", "to", "deals", "amount"):
        tags.add_column(column, justify="right" if column in ("deals", "amount") else "left")
    for row in data["tag_changes"]:
        tags.add_row(
            row["from"] or "(none)", row["to"], f"{row['count']:,}", f"{row['amount']:,.0f}"
        )
    console.print(tags)
    comp, warnings, coaching = data["comp_changes"], data["warnings"], data["coaching"]
    console.print(
        f"Comp eligibility: {comp['to_true']:,} become eligible, {comp['to_false']:,} stop.\n"
        f"Warnings added: {_by_rule(warnings['added'])}; "
        f"removed: {_by_rule(warnings['removed'])}.\n"
        f"Coaching (cap {coaching.get('cap', '?')} per rep, {coaching['open_now']:,} open now): "
        f"{coaching['create']:,} to create, {coaching['queue']:,} to queue, "
        f"{coaching['close']:,} to close"
        + (f", {coaching['over_cap']:,} open beyond the cap" if coaching["over_cap"] else "")
        + ".\n"
        f"{preview.changed:,} opportunities would have fields written; "
        f"{preview.reevaluate:,} would be re-evaluated on publish."
    )
    if data.get("unknown_target_accounts"):
        unknown = data["unknown_target_accounts"]
        console.print(
            f"[yellow]{len(unknown)} target account id(s) match no known account:[/] "
            + ", ".join(unknown[:20])
            + (" ..." if len(unknown) > 20 else "")
        )


def _by_rule(counts: dict[str, int]) -> str:
    return ", ".join(f"{rule} {n:,}" for rule, n in counts.items()) or "none"


def _share_table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("group")
    for column in ("deals", "share before", "after", "by amount before", "after"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row["group"],
            f"{row['deals']:,}",
            _pct(row["before"]),
            _pct(row["after"]),
            _pct(row["before_by_amount"]),
            _pct(row["after_by_amount"]),
        )
    return table


def print_largest(console: Console, preview: Preview) -> None:
    """The 50 largest changes, every value in full."""
    largest = preview.largest
    if not largest:
        console.print("No written field would change.")
        return
    table = Table(title=f"The {len(largest)} largest changes", title_justify="left")
    for column in ("opportunity", "owner", "amount", "field", "now", "after publish"):
        table.add_column(column, justify="right" if column == "amount" else "left", overflow="fold")
    for change in largest:
        for index, (name, (old, new)) in enumerate(change.fields.items()):
            first = index == 0
            table.add_row(
                f"{change.crm} {change.opportunity_id} {change.name}" if first else "",
                change.owner if first else "",
                f"{change.amount:,.0f}" if first else "",
                name,
                _shown(old),
                _shown(new),
            )
    console.print(table)


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "(empty)"
    return str(value).lower() if isinstance(value, bool) else str(value)
