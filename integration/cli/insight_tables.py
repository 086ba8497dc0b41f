"""The insights in a terminal (rich tables) and in a spreadsheet (CSV).

Only presentation: every figure comes from :mod:`integration.reports.insights`,
the same dictionary ``--format json`` prints and the API serves.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

TREND_ROWS = 12
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SHARE_KEYS = ("share", "rate", "_share")


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def points(value: float | None) -> str:
    return "-" if value is None else f"{round(value * 100):+d} pts"


def _table(title: str, columns: Sequence[str], left: int = 1) -> Table:
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index < left else "right", no_wrap=index >= left)
    return table


def scope_line(report: dict[str, Any]) -> str:
    scope = report["scope"]
    what = {
        "open": "open pipeline now",
        "won": f"deals won {scope['from']} to {scope['to']}",
        "lost": f"deals lost {scope['from']} to {scope['to']}",
        "all": f"open pipeline now and deals closed {scope['from']} to {scope['to']}",
    }[scope["status"]]
    return (
        f"Scope: {what}; win rates over deals closed {scope['from']} to {scope['to']}; "
        f"judged by ruleset {scope['live_version'] or '-'}."
    )


def lines_table(report: dict[str, Any]) -> Table:
    title = (
        f"On strategy by {report['scope']['by']} (share: on-strategy deals / deals; appr.: "
        "approved exceptions, counted apart; win on/off: won / closed; new vs base: share of "
        "new pipeline since the baseline against the group's own baseline)"
    )
    table = _table(
        title,
        ("", "deals", "on", "appr.", "share", "by amt", "win on", "win off", "new vs base"),
    )
    for line in [*report["lines"], report["total"]]:
        table.add_row(
            line["group"],
            str(line["deals"]),
            str(line["on_strategy"]),
            str(line["approved"]),
            pct(line["share"]),
            pct(line["share_by_amount"]),
            pct(line["win_rate_on"]),
            pct(line["win_rate_off"]),
            points(line["new_share_change"]),
            style="bold" if line is report["total"] else None,
        )
    return table


def size_table(report: dict[str, Any]) -> Table:
    table = _table(
        "Deal size and days to close (won deals), on vs off strategy; comp: comp-eligible "
        "share; warn: deals with a warning",
        ("", "avg on", "avg off", "days on", "days off", "comp", "warn"),
    )
    for line in [*report["lines"], report["total"]]:
        table.add_row(
            line["group"],
            money(line["avg_amount_on"]),
            money(line["avg_amount_off"]),
            money(line["days_to_close_on"]),
            money(line["days_to_close_off"]),
            pct(line["comp_share"]),
            str(line["warnings"]),
            style="bold" if line is report["total"] else None,
        )
    return table


def trend_table(report: dict[str, Any], rows: int = TREND_ROWS) -> Table:
    base = report["baseline"] or {}
    table = _table(
        f"Trend by ISO week (last {rows}; new: deals created that week; won: amount won that "
        "week; * the live ruleset changed that week and every week is judged by the live one)",
        ("week", "new deals", "new on strategy", "won amount", "won on strategy", "vs base"),
    )
    if base:
        table.add_row(
            f"baseline {base['from']}..{base['to']}",
            str(base["new_deals"]),
            pct(base["new_share"]),
            money(base["won_amount"]),
            pct(base["won_share"]),
            "",
            style="bold",
        )
    for week in report["trend"][-rows:]:
        delta = None
        if week["new_share"] is not None and base.get("new_share") is not None:
            delta = week["new_share"] - base["new_share"]
        table.add_row(
            week["week"] + (" *" if week["ruleset_changed"] else ""),
            str(week["new_deals"]),
            pct(week["new_share"]),
            money(week["won_amount"]),
            pct(week["won_share"]),
            points(delta),
        )
    return table


def deals_table(title: str, items: Iterable[dict[str, Any]]) -> Table:
    table = _table(title, ("opportunity", "name", "owner", "stage", "amount", "fit"), left=4)
    for deal in items:
        table.add_row(
            deal["opportunity_id"],
            deal["name"][:32],
            deal["owner"],
            deal["stage"],
            money(deal["amount"]),
            deal["fit"],
        )
    return table


def patterns_table(report: dict[str, Any], top: int = 5) -> Table:
    total = report["cull_total"]
    table = _table(
        f"Open off-strategy pipeline: {total['count']} deals, {money(total['amount'])} "
        f"(largest {top} per dimension)",
        ("by", "value", "deals", "amount"),
        left=2,
    )
    for key, rows in report["patterns"].items():
        for row in rows[:top]:
            table.add_row(key, row["value"], str(row["count"]), money(row["amount"]))
    return table


def learn_table(report: dict[str, Any]) -> Table:
    table = Table(
        title="Reps to learn from (new-pipeline share and on-strategy win rate both above "
        "their team's)",
        title_justify="left",
    )
    for column in ("rep", "team", "share vs team", "win on vs team"):
        table.add_column(column, no_wrap=True)
    table.add_column("what their on-strategy deals have in common")
    for rep in report["learn_from"]:
        common = ", ".join(i["value"] for i in rep["top_industries"][:2])
        common += "; " + ", ".join(p["value"] for p in rep["top_products"][:2])
        table.add_row(
            rep["owner"],
            rep["team"],
            f"{pct(rep['share'])} vs {pct(rep['team_share'])}",
            f"{pct(rep['win_rate_on'])} vs {pct(rep['team_win_rate_on'])}",
            common,
        )
    return table


def flags_table(report: dict[str, Any], below: str = "") -> Table:
    table = _table(
        f"Red flags (on-strategy share below the line{below})",
        ("level", "group", "deals", "share"),
        left=2,
    )
    for flag in report["red_flags"]:
        table.add_row(flag["level"], flag["group"], str(flag["deals"]), pct(flag["share"]))
    return table


def coaching_table(report: dict[str, Any]) -> Table:
    table = _table(
        "Coaching tasks by manager and rep",
        ("manager", "rep", "open", "queued", "completed", "closed"),
        left=2,
    )
    for line in report["coaching"]:
        table.add_row(
            line["manager"],
            line["rep"],
            *(str(line[k]) for k in ("open", "queued", "completed", "closed")),
        )
    return table


def print_insights(console: Console, report: dict[str, Any]) -> None:
    """The whole report as a leader reads it, top to bottom."""
    console.print(scope_line(report))
    console.print(lines_table(report))
    console.print(size_table(report))
    if report["trend"]:
        console.print(trend_table(report))
    if report["red_flags"]:
        console.print(flags_table(report))
    if report["learn_from"]:
        console.print(learn_table(report))
    if report["cull_total"]["count"]:
        console.print(patterns_table(report))
    console.print(
        deals_table(
            "Top 10 late-stage opportunities (probability >= 60%)", report["top_late_stage"]
        )
    )
    console.print(deals_table("Top 10 opportunities by value, all stages", report["top_value"]))
    if report["cull"]:
        console.print(
            deals_table(
                "Cull list: open deals that count as off strategy, largest first (top 10)",
                report["cull"][:10],
            )
        )
    if report["coaching"]:
        console.print(coaching_table(report))


# -- CSV ---------------------------------------------------------------------------------------


def safe_cell(value: Any, key: str = "") -> Any:
    """A CSV cell a spreadsheet never runs as a formula; shares to 4 places, no -0.0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if any(part in key for part in SHARE_KEYS):
            value = round(value, 4)
        return 0.0 if value == 0 else value
    if isinstance(value, int):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def report_csv(report: dict[str, Any]) -> str:
    """One row per group and the total: every figure of the lines."""
    rows = [*report["lines"], report["total"]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    keys = list(rows[0]) if rows else ["group"]
    writer.writerow(keys)
    for row in rows:
        writer.writerow([safe_cell(row.get(key), key) for key in keys])
    return buffer.getvalue()


def manager_table(view: dict[str, Any]) -> Table:
    table = _table(
        f"Coaching queue of {view['manager']}: open tasks, then the queue, most important first",
        ("rep", "status", "opportunity", "task", "amount"),
        left=4,
    )
    for rep in view["reps"]:
        for task in rep["tasks"]:
            deal = task["deal"]
            table.add_row(
                rep["rep"],
                task["status"],
                deal["opportunity_id"],
                task["subject"][:60],
                money(deal.get("amount")),
            )
    return table


def rep_table(view: dict[str, Any]) -> Table:
    table = _table(
        f"{view['owner']} against {view['team']}",
        ("", "deals", "share", "by amount", "win on", "win off", "warn", "new vs base"),
    )
    for label, line in ((view["owner"], view["rep"]), (view["team"], view["team_line"])):
        if line is None:
            continue
        table.add_row(
            label,
            str(line["deals"]),
            pct(line["share"]),
            pct(line["share_by_amount"]),
            pct(line["win_rate_on"]),
            pct(line["win_rate_off"]),
            str(line["warnings"]),
            points(line["new_share_change"]),
        )
    return table


def print_view(console: Console, view: dict[str, Any], fmt: str) -> None:
    """A manager's coaching queue or a rep's own figures."""
    if fmt == "json":
        console.out(json.dumps(view, indent=2))
        return
    if fmt == "csv":
        console.out(view_csv(view), end="")
        return
    if "reps" in view:
        console.print(manager_table(view))
        return
    console.print(rep_table(view))
    if view["warnings"]:
        console.print(deals_table("Open deals with a warning", view["warnings"]))


def view_csv(view: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if "reps" in view:
        writer.writerow(["manager", "rep", "status", "subject", "opportunity_id", "name", "amount"])
        for rep in view["reps"]:
            for task in rep["tasks"]:
                deal = task["deal"]
                cells = (
                    view["manager"],
                    rep["rep"],
                    task["status"],
                    task["subject"],
                    deal["opportunity_id"],
                    deal.get("name", ""),
                    deal.get("amount"),
                )
                writer.writerow([safe_cell(c) for c in cells])
        return buffer.getvalue()
    lines = [line for line in (view["rep"], view["team_line"]) if line]
    keys = list(lines[0])
    writer.writerow(keys)
    for line in lines:
        writer.writerow([safe_cell(line.get(key), key) for key in keys])
    return buffer.getvalue()
