"""The ``onstrategy`` command. Each command is a thin shell over a module."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress

from integration.app.factory import create_app
from integration.cli.crm_setup import run_setup
from integration.cli.demo import run_demo
from integration.cli.explain import print_explanation
from integration.cli.insight_tables import print_insights, print_view, report_csv
from integration.cli.tables import print_outcome
from integration.domain.crms import CRM_NAMES, REMOTE_CRMS
from integration.engine.casebook import run_tests
from integration.engine.rulebook import load_rulebook
from integration.engine.ruleset import load_ruleset
from integration.jobs.worker import failed_jobs, requeue, run_worker
from integration.pipeline.sweep import reconcile_plan, run_sweep, sync_targets
from integration.reports.insights import GROUPINGS, STATUSES
from integration.reports.service import Ask
from integration.runtime import Runtime
from integration.settings import Settings, SettingsError

console = Console()
CRM = click.Choice(CRM_NAMES)


def _settings(**overrides: Any) -> Settings:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    return settings.replace(**{k: v for k, v in overrides.items() if v is not None})


def _runtime(settings: Settings | None = None) -> Any:
    runtime = Runtime(settings or _settings())
    runtime.store.migrate()
    return runtime


def _rulebook(runtime: Any) -> Any:
    rulebook = runtime.rules.current()
    if rulebook is None:
        for problem in runtime.rules.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException("the rule files are invalid; fix them and try again")
    return rulebook


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log what happens.")
def main(verbose: bool) -> None:
    """OnStrategy: put the sales strategy into the CRM."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.command()
@click.option(
    "--deals",
    default=600,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="How many deals the sandbox is seeded with (first run only).",
)
def demo(deals: int) -> None:
    """Run the whole pipeline on the sandbox CRM, in-process, with a SQLite store."""

    settings = _settings(crms=("sandbox",), redis_url="")
    run_demo(_runtime(settings), console, deals)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Serve webhooks, health, metrics, admin API and dashboard (development server)."""

    app = create_app(_settings())
    console.print(
        f"Serving on http://{host}:{port} (use gunicorn 'integration.app:create_app()' "
        "in production)"
    )
    app.run(host=host, port=port)


@main.command()
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
def worker(burst: bool) -> None:
    """Run an RQ worker on the project's queue (needs ONSTRATEGY_REDIS_URL)."""

    settings = _settings()
    if not settings.redis_url:
        raise click.ClickException("ONSTRATEGY_REDIS_URL is not set; a worker needs Redis")
    run_worker(_runtime(settings), burst=burst)


@main.group()
def rules() -> None:
    """Check and test the rule files."""


@rules.command("check")
@click.option(
    "--rules", "rules_dir", type=click.Path(), help="Rules folder (ONSTRATEGY_RULES_DIR)."
)
def rules_check(rules_dir: str | None) -> None:
    """Validate every rule file; one FILE:LINE: message per problem."""

    directory = rules_dir or _settings().rules_dir
    rulebook, problems = load_rulebook(directory)
    for problem in problems:
        click.echo(str(problem))
    if rulebook is None:
        sys.exit(1)
    ruleset = rulebook.ruleset
    counts = (
        f"{len(ruleset.segments)} segments, {len(ruleset.fit)} fit rules, "
        f"{len(ruleset.warnings)} warnings, {len(ruleset.coaching)} coaching tasks"
    )
    click.echo(
        f"{directory}: valid (ruleset {ruleset.version}: {counts}; "
        f"target list {rulebook.targets.version})"
    )


@rules.command("test")
@click.option(
    "--rules", "rules_dir", type=click.Path(), help="Rules folder (ONSTRATEGY_RULES_DIR)."
)
def rules_test(rules_dir: str | None) -> None:
    """Run the rule test cases in DIR/tests/; exit 1 on any failure."""

    directory = rules_dir or _settings().rules_dir
    ruleset, problems = load_ruleset(directory)
    if ruleset is None:
        for problem in problems:
            click.echo(str(problem))
        sys.exit(1)
    results, problems = run_tests(ruleset, directory)
    for problem in problems:
        click.echo(str(problem))
    for result in results:
        if result.passed:
            continue
        click.echo(f"FAIL {result.file}:{result.line}: {result.name}")
        for key, expected, actual in result.mismatches:
            click.echo(f"    {key}: expected {expected!r}, got {actual!r}")
        for error in result.errors:
            click.echo(f"    error: {error}")
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed or problems or not results:
        sys.exit(1)


@main.command()
@click.option("--crm", type=click.Choice(REMOTE_CRMS), required=True)
def setup(crm: str) -> None:
    """Create the custom fields/properties the service writes, idempotently."""

    runtime = _runtime()
    run_setup(runtime, crm, _rulebook(runtime), console)


@main.command()
@click.option("--crm", type=CRM, required=True)
@click.option("--since", help="Only opportunities changed since this ISO time.")
@click.option("--dry-run", is_flag=True, help="Print the planned changes; write nothing.")
def reconcile(crm: str, since: str | None, dry_run: bool) -> None:
    """Re-evaluate opportunities (changed since, or all open)."""

    runtime = _runtime()
    _run_sweep(runtime, crm, reconcile_plan(_rulebook(runtime), since), dry_run, "reconcile")


@main.group()
def targets() -> None:
    """The target account list."""


@targets.command("sync")
@click.option("--crm", type=CRM, required=True)
@click.option("--dry-run", is_flag=True, help="Print the planned changes; write nothing.")
def targets_sync(crm: str, dry_run: bool) -> None:
    """Bring every comp-eligibility flag in step with the target account list now."""

    runtime = _runtime()
    rulebook = _rulebook(runtime)
    console.print(f"Target list {rulebook.targets.version}.")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"targets sync {crm}", total=None)
        accounts, outcome = sync_targets(
            runtime, crm, dry_run=dry_run, progress=lambda n: progress.advance(task, n)
        )
    if outcome is None:
        console.print("The target list has not changed since the last sync; nothing to do.")
        return
    what = "every open opportunity" if accounts is None else f"{len(accounts)} changed account(s)"
    console.print(f"Re-evaluated the opportunities of {what}.")
    print_outcome(console, outcome, dry_run)


def _run_sweep(runtime: Any, crm: str, plan: Any, dry_run: bool, trigger: str) -> None:
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{trigger} {crm}", total=None)
        outcome = run_sweep(
            runtime,
            crm,
            plan,
            dry_run=dry_run,
            trigger=trigger,
            progress=lambda n: progress.advance(task, n),
        )
    print_outcome(console, outcome, dry_run)


@main.command()
@click.argument("crm", type=CRM)
@click.argument("opp_id")
def explain(crm: str, opp_id: str) -> None:
    """The latest decision for one opportunity, why, and its history."""

    if not print_explanation(_runtime().store, crm, opp_id, console):
        raise click.ClickException(f"no decision recorded for {crm} {opp_id}")


@main.command()
@click.option("--by", type=click.Choice(GROUPINGS), default="team", show_default=True)
@click.option("--status", type=click.Choice(STATUSES), default="open", show_default=True)
@click.option(
    "--from",
    "start",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Closed from (default: quarter start).",
)
@click.option(
    "--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Closed until (default: today)."
)
@click.option("--baseline-from", type=click.DateTime(["%Y-%m-%d"]), help="Baseline start.")
@click.option("--baseline-to", type=click.DateTime(["%Y-%m-%d"]), help="Baseline end.")
@click.option("--manager", help="A manager's coaching queue (name or id) instead.")
@click.option("--rep", help="A rep's own figures next to their team's (name or id) instead.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", "json", "csv")),
    default="table",
    show_default=True,
)
def report(fmt: str, manager: str | None, rep: str | None, **options: Any) -> None:
    """On-strategy share and win rates for the scope, trend against the baseline,
    patterns, reps to learn from, the top and cull lists, coaching."""

    runtime = _runtime()
    _rulebook(runtime)
    try:
        ask = Ask(**{k: v.date() if hasattr(v, "date") else v for k, v in options.items()})
        insights = runtime.insights
        if manager or rep:
            view = insights.manager_view(manager) if manager else insights.rep_view(rep, ask)
            if view is None:
                raise click.ClickException(
                    f"no {'manager' if manager else 'rep'} named {manager or rep!r}"
                )
            print_view(Console(width=200) if fmt != "table" else console, view, fmt)
            return
        built = insights.report(ask)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if fmt == "json":
        click.echo(json.dumps(built, indent=2))
    elif fmt == "csv":
        click.echo(report_csv(built), nl=False)
    else:
        print_insights(console, built)


@main.group()
def jobs() -> None:
    """Queued work: list and requeue failed jobs."""


@jobs.command("failed")
def jobs_failed() -> None:
    """List jobs that failed for good, with their reason."""

    rows = failed_jobs(_runtime())
    for job_id, name, reason in rows:
        click.echo(f"{job_id}  {name}  {reason}")
    click.echo(f"{len(rows)} failed job(s)")


@jobs.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Requeue every failed job.")
def jobs_requeue(job_ids: tuple[str, ...], everything: bool) -> None:
    """Put failed jobs back on the queue."""

    count = requeue(_runtime(), list(job_ids), everything)
    click.echo(f"requeued {count} job(s)")
