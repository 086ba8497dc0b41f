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
from rich.progress import Progress
from rich.table import Table

from connectors.base import OpportunityQuery
from connectors.sandbox_seed import seed
from integration.cli.tables import coaching_table, money, pct, report_table
from integration.pipeline.processor import BatchOutcome
from integration.pipeline.sweep import SweepPlan, run_sweep
from integration.reports import figures as report_module
from integration.runtime import Runtime


def run_demo(runtime: Runtime, console: Console) -> BatchOutcome:
    rulebook = runtime.rulebook()
    connector = runtime.connector("sandbox")
    seeded = seed(connector, today=runtime.today())
    console.print(Panel.fit(rulebook.ruleset.strategy, title="Strategy"))
    total = sum(len(page) for page in connector.iter_opportunities(OpportunityQuery()))
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Evaluating the pipeline", total=total)
        outcome = run_sweep(
            runtime,
            "sandbox",
            SweepPlan("demo", OpportunityQuery()),
            trigger="demo",
            progress=lambda n: progress.advance(task, n),
        )
    _print_summary(runtime, console, outcome, seeded)
    return outcome


def _print_summary(runtime: Runtime, console: Console, outcome: BatchOutcome, seeded: bool) -> None:
    store = runtime.store
    report = report_module.build(
        store.latest_decisions("sandbox"), [], store.tasks.summary(), by="team"
    )
    console.print(_tags_table(outcome.tags))
    console.print(report_table(report))
    total = report.total
    console.print(
        f"On Strategy: [bold]{pct(total.share)}[/] of deals, [bold]{pct(total.share_by_amount)}[/]"
        f" of pipeline amount ({money(total.on_strategy_amount)} of {money(total.amount)}).\n"
        f"Comp eligible (target accounts): [bold]{pct(total.comp_share)}[/] of deals. "
        f"Deals with a warning for the rep: [bold]{total.warnings}[/]."
    )
    if report.coaching:
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
    example = next(iter(store.latest_decisions("sandbox")), None)
    console.print(
        Panel.fit(
            "Try next:\n"
            f"  onstrategy explain sandbox {example.opportunity_id if example else 'OPP-00001'}\n"
            "  onstrategy report --by owner\n"
            "  onstrategy rules check && onstrategy rules test\n"
            "  onstrategy reconcile --crm sandbox --dry-run   (after editing rules/strategy.yaml)",
            title="What next",
        )
    )


def _tags_table(tags: Counter) -> Table:
    table = Table(title="Deals by strategy fit", title_justify="left")
    table.add_column("tag")
    table.add_column("deals", justify="right")
    for tag, count in tags.most_common():
        table.add_row(tag, str(count))
    return table
