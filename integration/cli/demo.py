"""``onstrategy demo``: the whole product on embedded defaults.

Seeds the sandbox CRM with a realistic pipeline, runs every opportunity through
the pipeline in-process, and prints what a sales leader would ask first: how
much of the business is on strategy, what reps were warned about, what
managers were asked to coach, and how much counts for compensation. Run twice,
it writes nothing the second time.
"""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from connectors.base import OpportunityQuery
from connectors.sandbox_seed import seed
from integration.cli.common import progress as progress_bar
from integration.cli.insight_tables import (
    coaching_table,
    deals_table,
    flags_table,
    learn_table,
    lines_table,
    money,
    pct,
    points,
    trend_table,
)
from integration.pipeline.processor import BatchOutcome
from integration.pipeline.sweep import SweepPlan, run_sweep
from integration.reports.service import Ask
from integration.runtime import Runtime


def run_demo(runtime: Runtime, console: Console, deals: int = 600) -> BatchOutcome:
    rulebook = runtime.rulebook()
    connector = runtime.connector("sandbox")
    seeded = seed(connector, opportunities=deals, today=runtime.today())
    console.print(Panel.fit(rulebook.ruleset.strategy, title="Strategy"))
    total = sum(len(page) for page in connector.iter_opportunities(OpportunityQuery()))
    with progress_bar(console, "Evaluating the pipeline", total) as advance:
        outcome = run_sweep(
            runtime,
            "sandbox",
            SweepPlan("demo", OpportunityQuery()),
            trigger="demo",
            progress=advance,
        )
    _print_summary(runtime, console, outcome, seeded)
    return outcome


def _print_summary(runtime: Runtime, console: Console, outcome: BatchOutcome, seeded: bool) -> None:
    report = runtime.insights.report(Ask())
    console.print(_tags_table(outcome.tags))
    _print_story(console, report, runtime.insights.report(Ask(status="all")))
    if report["coaching"]:
        console.print(coaching_table(report))
    created = len(outcome.coaching.created)
    written = (
        f"{'Seeded the sandbox CRM. ' if seeded else ''}This run wrote {outcome.changed} deal(s), "
        f"created {created} coaching task(s) and closed {len(outcome.coaching.closed)}; "
        f"{outcome.coaching.queued} coaching task(s) wait for a free slot (cap per rep)."
    )
    console.print(written)
    if outcome.failed:
        console.print(f"[red]{outcome.failed} write(s) failed; see `onstrategy report`.[/]")
    example = (
        report["top_late_stage"][0]["opportunity_id"] if report["top_late_stage"] else "OPP-00001"
    )
    learn = report["learn_from"][0]["owner"] if report["learn_from"] else "Priya Raman"
    manager = report["coaching"][0]["manager"] if report["coaching"] else "Margaret Chen"
    console.print(
        Panel.fit(
            "Try next:\n"
            f"  onstrategy explain sandbox {example}\n"
            "  onstrategy report --by owner --status all\n"
            f'  onstrategy report --rep "{learn}"      (a rep against their team)\n'
            f'  onstrategy report --manager "{manager}"  (a manager\'s coaching queue)\n'
            "  onstrategy rules check && onstrategy rules test\n"
            "  onstrategy rules preview   (after editing rules/strategy.yaml)\n"
            "  onstrategy rules publish   (then: onstrategy rules history / rollback)",
            title="What next",
        )
    )


def _print_story(console: Console, report: dict, everything: dict) -> None:
    """What a sales leader asks first, in the seeds' order: how much is on strategy,
    is it getting better against the baseline, where it goes wrong, who to learn from."""
    total = report["total"]
    console.print(lines_table(report))
    console.print(
        f"On Strategy: [bold]{pct(total['share'])}[/] of deals, [bold]"
        f"{pct(total['share_by_amount'])}[/] of pipeline amount "
        f"({money(total['on_strategy_amount'])} of {money(total['amount'])}; open pipeline now).\n"
        f"Comp eligible (target accounts): [bold]{pct(total['comp_share'])}[/] of deals. "
        f"Deals with a warning for the rep: [bold]{total['warnings']}[/].\n"
        f"Win rate this quarter: [bold]{pct(total['win_rate_on'])}[/] on strategy, "
        f"[bold]{pct(total['win_rate_off'])}[/] off strategy."
    )
    base, since = everything["baseline"], everything["total"]
    if base:
        console.print(trend_table(everything))
        console.print(
            f"New pipeline on strategy: [bold]{pct(base['new_share'])}[/] in the baseline "
            f"({base['from']} to {base['to']}), [bold]{pct(since['new_share'])}[/] since "
            f"({points(since['new_share_change'])})."
        )
    if report["red_flags"]:
        console.print(flags_table(report))
    if everything["learn_from"]:
        console.print(learn_table(everything))
    if report["cull_total"]["count"]:
        rules = report["patterns"]["fit_rule"][:3]
        why = "; ".join(f"{r['value']}: {r['count']} deals, {money(r['amount'])}" for r in rules)
        console.print(f"Open off-strategy pipeline by reason: {why}.")
        console.print(
            deals_table("Cull first: largest open off-strategy deals", report["cull"][:5])
        )
    console.print(deals_table("Top late-stage opportunities", report["top_late_stage"][:5]))


def _tags_table(tags: Counter) -> Table:
    table = Table(title="Deals by strategy fit", title_justify="left")
    table.add_column("tag")
    table.add_column("deals", justify="right")
    for tag, count in tags.most_common():
        table.add_row(tag, str(count))
    return table
