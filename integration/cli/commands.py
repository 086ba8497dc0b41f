"""The ``onstrategy`` command. Each command is a thin shell over a module."""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from integration.app.factory import create_app
from integration.cli.common import (
    EXAMPLE_RULES,
    RULES_OPTION,
    Commands,
    live_rulebook,
    progress,
    require_credentials,
    runtime,
    settings,
)
from integration.cli.crm_setup import run_setup
from integration.cli.demo import run_demo
from integration.cli.explain import print_explanation
from integration.cli.insight_tables import print_insights, print_view, report_csv
from integration.cli.rules import rules
from integration.cli.store import publish_target_list, store
from integration.cli.tables import print_outcome
from integration.domain.crms import CRM_NAMES, REMOTE_CRMS
from integration.engine.ruleset import RULE_FILE
from integration.jobs.worker import failed_jobs, requeue, run_worker
from integration.pipeline.sweep import reconcile_plan, run_sweep, sync_targets
from integration.reports.insights import GROUPINGS, STATUSES
from integration.reports.service import Ask
from integration.runtime import Runtime

console = Console()
CRM = click.Choice(CRM_NAMES)


@click.group(cls=Commands)
@click.version_option(package_name="onstrategy", prog_name="onstrategy")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens.")
def main(verbose: bool) -> None:
    """OnStrategy: put the sales strategy into the CRM."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


main.add_command(rules)
main.add_command(store)


@main.command()
@RULES_OPTION
@click.option(
    "--deals",
    default=600,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="How many deals the sandbox is seeded with (first run only).",
)
def demo(rules_dir: str | None, deals: int) -> None:
    """Run the whole pipeline on the sandbox CRM, in-process, with a SQLite store.

    Works from any folder: without a rules folder here (or ONSTRATEGY_RULES_DIR),
    the example rules shipped with the package are used.
    """
    loaded = settings(rules_dir or _demo_rules(), crms=("sandbox",), redis_url="")
    made = runtime(loaded, publish_first=True)
    live_rulebook(made)
    run_demo(made, console, deals)


def _demo_rules() -> str | None:
    """The working copy if there is one, else the example rules inside the package."""
    if os.environ.get("ONSTRATEGY_RULES_DIR") or Path("rules", RULE_FILE).is_file():
        return None
    return str(EXAMPLE_RULES)


@main.command()
@RULES_OPTION
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(rules_dir: str | None, host: str, port: int) -> None:
    """Serve webhooks, health, metrics, admin API and dashboard (development server)."""

    app = create_app(settings(rules_dir))
    console.print(
        f"Serving on http://{host}:{port} (use gunicorn 'integration.app:create_app()' "
        "in production)"
    )
    app.run(host=host, port=port)


@main.command()
@RULES_OPTION
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
def worker(rules_dir: str | None, burst: bool) -> None:
    """Run an RQ worker on the project's queue (needs ONSTRATEGY_REDIS_URL)."""

    loaded = settings(rules_dir)
    if not loaded.redis_url:
        raise click.ClickException("ONSTRATEGY_REDIS_URL is not set; a worker needs Redis")
    made = runtime(loaded, publish_first=True)
    made.redis.ping()  # an unreachable Redis is one line, not a traceback
    live_rulebook(made)
    run_worker(made, burst=burst)


@main.command()
@click.option("--crm", type=click.Choice(REMOTE_CRMS), required=True)
def setup(crm: str) -> None:
    """Create the custom fields/properties the service writes, idempotently."""

    made = runtime()
    require_credentials(made, crm)
    run_setup(made, crm, live_rulebook(made), console)


def _iso_time(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``--since``: an ISO date or time, checked before anything runs (exit 2 otherwise)."""
    if value is None:
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO date or time (e.g. 2026-11-30 or 2026-11-30T08:00:00Z)"
        ) from None
    return value


@main.command()
@click.option("--crm", type=CRM, required=True)
@click.option("--since", callback=_iso_time, help="Only opportunities changed since this ISO time.")
@click.option("--dry-run", is_flag=True, help="Print the planned changes; write nothing.")
def reconcile(crm: str, since: str | None, dry_run: bool) -> None:
    """Re-evaluate opportunities (changed since, or all open) under the live rules."""

    made = runtime()
    require_credentials(made, crm)
    _run_sweep(made, crm, reconcile_plan(live_rulebook(made), since), dry_run, "reconcile")


@main.group()
def targets() -> None:
    """The target account list."""


@targets.command("sync")
@RULES_OPTION
@click.option("--crm", type=CRM, required=True)
@click.option("--dry-run", is_flag=True, help="Print the planned changes; write nothing.")
def targets_sync(rules_dir: str | None, crm: str, dry_run: bool) -> None:
    """Bring every comp-eligibility flag in step with the target account list now.

    When the working copy's target list differs from the live one, it is
    published first (a new live version in which only the list changed).
    """

    made = runtime(settings(rules_dir))
    require_credentials(made, crm)
    if not publish_target_list(made, console, dry_run):
        return
    rulebook = live_rulebook(made)
    console.print(f"Target list {rulebook.targets.version}.")
    with progress(console, f"targets sync {crm}") as advance:
        accounts, outcome = sync_targets(made, crm, dry_run=dry_run, progress=advance)
    if outcome is None:
        console.print("The target list has not changed since the last sync; nothing to do.")
        return
    what = "every open opportunity" if accounts is None else f"{len(accounts)} changed account(s)"
    console.print(f"Re-evaluated the opportunities of {what}.")
    print_outcome(console, outcome, dry_run)


def _run_sweep(made: Any, crm: str, plan: Any, dry_run: bool, trigger: str) -> None:
    with progress(console, f"{trigger} {crm}") as advance:
        outcome = run_sweep(made, crm, plan, dry_run=dry_run, trigger=trigger, progress=advance)
    print_outcome(console, outcome, dry_run)


@main.command()
@click.argument("crm", type=CRM)
@click.argument("opp_id")
def explain(crm: str, opp_id: str) -> None:
    """The latest decision for one opportunity, why, and its history."""

    if not print_explanation(runtime().store, crm, opp_id, console):
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

    made = runtime()
    live_rulebook(made)
    try:
        ask = Ask(**{k: v.date() if hasattr(v, "date") else v for k, v in options.items()})
        insights = made.insights
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

    rows = failed_jobs(_redis_runtime())
    for job_id, name, reason in rows:
        click.echo(f"{job_id}  {name}  {reason}")
    click.echo(f"{len(rows)} failed job(s)")


@jobs.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Requeue every failed job.")
def jobs_requeue(job_ids: tuple[str, ...], everything: bool) -> None:
    """Put failed jobs back on the queue."""

    if not job_ids and not everything:
        raise click.UsageError("name the job ids to requeue, or use --all")
    count = requeue(_redis_runtime(), list(job_ids), everything)
    click.echo(f"requeued {count} job(s)")


def _redis_runtime() -> Runtime:
    made = runtime()
    if made.redis is None:
        raise click.ClickException("ONSTRATEGY_REDIS_URL is not set; jobs live in Redis")
    made.redis.ping()
    return made
