"""``onstrategy store prune`` and the target list published on its own by ``targets sync``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from rich.console import Console

from integration.cli.common import confirm_unknown, live_rulebook, runtime
from integration.cli.preview_view import print_summary
from integration.cli.rules import who_publishes
from integration.engine.rulebook import load_rulebook, read_folder, rulebook_from_files, with_files
from integration.jobs.publish import publish_files
from integration.pipeline.preview import run_preview, unknown_target_accounts
from integration.runtime import Runtime
from integration.store.retention import prune


@click.group()
def store() -> None:
    """The store: history retention."""


@store.command("prune")
@click.option(
    "--days",
    type=click.IntRange(1),
    help="Keep this many days of history (default: ONSTRATEGY_RETENTION_DAYS).",
)
def store_prune(days: int | None) -> None:
    """Delete events, decisions and writes older than the retention period.

    Each opportunity's newest decision is always kept (explain and reports need
    it), and the current state is never touched.
    """
    made = runtime()
    keep = days or made.settings.retention_days
    removed = prune(made.store, datetime.now(UTC) - timedelta(days=keep))
    click.echo(
        f"Kept {keep} days: removed {removed['decisions']:,} decisions, "
        f"{removed['writes']:,} writes, {removed['events']:,} events."
    )


def publish_target_list(made: Runtime, console: Console, dry_run: bool) -> bool:
    """Publish the working copy's target list when it differs from the live one.

    Only the list file changes in the new version; everything else stays as
    published. Returns whether the sync should run (a dry run with a new list
    shows its preview instead, since the sync would run under the new list).
    """
    working, problems = load_rulebook(made.settings.rules_dir)
    if working is None:
        for problem in problems:
            click.echo(str(problem), err=True)
        raise click.ClickException("the working copy is invalid; fix it and try again")
    live = live_rulebook(made)
    name = live.ruleset.target_file
    if name is None or working.targets.version == live.targets.version:
        _unknown(console, confirm_unknown(made, unknown_target_accounts(made.store, live)))
        return True
    stored = made.store.versions.version_files(made.rules.live_id or 0)
    files = with_files(stored, {name: read_folder(made.settings.rules_dir)[name]})
    candidate, problems = rulebook_from_files(files)
    if candidate is None:
        raise click.ClickException(f"the new target list does not load: {problems[0]}")
    _unknown(console, confirm_unknown(made, unknown_target_accounts(made.store, candidate)))
    if dry_run:
        console.print(
            f"The target list changed ({live.targets.version} -> {candidate.targets.version}); "
            "a real run publishes it first. What it changes on the known opportunities:"
        )
        preview = run_preview(made.store, live, candidate, made.today())
        preview.unknown_targets = []  # listed above
        print_summary(console, preview)
        return False
    publication = publish_files(made, files, who=who_publishes(), note=f"target list from {name}")
    console.print(f"Published version {publication.version}: only the target list changed.")
    return True


def _unknown(console: Console, unknown: list[str]) -> None:
    if unknown:
        console.print(
            f"[yellow]{len(unknown)} target account id(s) match no known account:[/] "
            + ", ".join(unknown[:20])
            + (" ..." if len(unknown) > 20 else "")
        )
