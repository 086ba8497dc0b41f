"""``onstrategy rules ...``: the admin's day, one command per step.

check and test read the working copy; preview compares it with the live version
over every known opportunity (no CRM call, nothing written); publish refuses a
working copy that fails check or test, shows the preview, asks, stores the
version and re-evaluates exactly what changes; history and rollback list and
re-publish stored versions.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import click
from rich.console import Console

from connectors.base import OpportunityQuery
from integration.cli.common import (
    RULES_OPTION,
    confirm_unknown,
    live_rulebook,
    progress,
    runtime,
    settings,
)
from integration.cli.preview_view import print_largest, print_summary, write_csv, write_json
from integration.cli.rules_sandbox import check_draft
from integration.engine.rulebook import Rulebook, load_rulebook, read_folder, rulebook_from_files
from integration.jobs.publish import publish_files, queue_reevaluation
from integration.pipeline.preview import ChangeSpool, Preview, run_preview
from integration.runtime import Runtime

console = Console()
FORMAT = click.Choice(("table", "json", "csv"))


@click.group()
def rules() -> None:
    """Check, test, preview, publish and roll back the rules."""


@rules.command("check")
@RULES_OPTION
def rules_check(rules_dir: str | None) -> None:
    """Validate every rule file; one FILE:LINE: message per problem."""
    directory = settings(rules_dir).rules_dir
    rulebook = _checked(directory)
    ruleset = rulebook.ruleset
    counts = (
        f"{len(ruleset.segments)} segments, {len(ruleset.fit)} fit rules, "
        f"{len(ruleset.warnings)} warnings, {len(ruleset.coaching)} coaching tasks"
    )
    click.echo(
        f"{directory}: valid (version {rulebook.version}: {counts}; "
        f"target list {rulebook.targets.version})"
    )


def _checked(directory: str) -> Rulebook:
    """The working copy, checked first in a child process with CPU and memory limits."""
    code, lines = check_draft(directory)
    for line in lines:
        click.echo(line)
    if code:
        sys.exit(1)
    rulebook, problems = load_rulebook(directory)
    if rulebook is None:  # the folder changed between the two reads
        for problem in problems:
            click.echo(str(problem))
        sys.exit(1)
    return rulebook


@rules.command("test")
@RULES_OPTION
def rules_test(rules_dir: str | None) -> None:
    """Run the rule test cases in DIR/tests/; exit 1 on any failure."""
    directory = settings(rules_dir).rules_dir
    if not _tests_pass(directory, quiet=False):
        sys.exit(1)


def _tests_pass(directory: str, quiet: bool) -> bool:
    """Check the folder and run its test cases, in a child process with limits."""
    code, lines = check_draft(directory, "quiet-test" if quiet else "test")
    for line in lines:
        click.echo(line)
    return code == 0


@rules.command("preview")
@RULES_OPTION
@click.option("--crm", "crm_names", help="Re-read only this CRM with --fresh (comma list).")
@click.option("--fresh", is_flag=True, help="Re-read every opportunity's facts from the CRM first.")
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Write the details to FILE.")
def rules_preview(
    rules_dir: str | None, crm_names: str | None, fresh: bool, fmt: str, out: str | None
) -> None:
    """What publishing the working copy would change, over every known opportunity."""
    made = runtime(settings(rules_dir), publish_first=False)
    live = live_rulebook(made)
    draft = _checked(made.settings.rules_dir)
    if fresh:
        _refresh_facts(made, _crms(made, crm_names))
    with ChangeSpool() as spool:
        preview = _preview(made, live, draft, spool)
        _show(preview, spool, fmt, out)


def _crms(made: Runtime, names: str | None) -> list[str]:
    return [n.strip() for n in names.split(",")] if names else list(made.settings.crms)


def _refresh_facts(made: Runtime, crms: list[str]) -> None:
    """``--fresh``: the store's facts of every opportunity, re-read from the CRM in pages."""
    for crm in crms:
        connector = made.connector(crm)
        with progress(console, f"re-reading {crm}") as advance:
            for page in connector.iter_opportunities(OpportunityQuery(page_size=2000)):
                made.store.current.refresh_facts(crm, page)
                advance(len(page))


def _preview(made: Runtime, live: Rulebook, draft: Rulebook, spool: ChangeSpool) -> Preview:
    with progress(console, "previewing", made.store.current.count()) as advance:
        preview = run_preview(made.store, live, draft, made.today(), spool, advance)
    preview.unknown_targets = confirm_unknown(made, preview.unknown_targets)
    return preview


def _show(preview: Preview, spool: ChangeSpool, fmt: str, out: str | None) -> None:
    with _output(out) as handle:
        if fmt == "json":
            write_json(preview, spool, handle or sys.stdout)
        elif fmt == "csv":
            write_csv(spool, handle or sys.stdout)
        else:
            print_summary(console, preview)
            if handle is None:
                print_largest(console, preview)
            else:
                write_csv(spool, handle)
    if out:
        console.print(f"Details written to {out} ({fmt}).")


@contextmanager
def _output(out: str | None) -> Iterator[IO[str] | None]:
    if not out:
        yield None
        return
    with open(out, "w", encoding="utf-8", newline="") as handle:
        yield handle


@rules.command("publish")
@RULES_OPTION
@click.option("--note", default="", help="Why: kept with the version.")
@click.option("--yes", is_flag=True, help="Publish without asking.")
def rules_publish(rules_dir: str | None, note: str, yes: bool) -> None:
    """Check, test and preview the working copy, then make it the live version."""
    made = runtime(settings(rules_dir), publish_first=False)
    directory = made.settings.rules_dir
    draft = _checked(directory)
    if not _tests_pass(directory, quiet=True):
        raise click.ClickException("the rule tests fail; nothing was published")
    _publish(made, read_folder(directory), draft, note, yes)


@rules.command("history")
@click.option("--limit", default=20, show_default=True, type=int)
def rules_history(limit: int) -> None:
    """The published versions, newest first (the first row is live)."""
    made = runtime(publish_first=False)
    publications = made.store.versions.history(limit)
    if not publications:
        raise click.ClickException("nothing has been published yet")
    for index, pub in enumerate(publications):
        live = "  (live)" if index == 0 else ""
        click.echo(
            f"#{pub.id}  {pub.version}{live}  {pub.published_at:%Y-%m-%d %H:%M} UTC  "
            f"by {pub.published_by}  target list {pub.target_list_version}"
        )
        if pub.note:
            click.echo(f"      {pub.note}")


@rules.command("rollback")
@click.argument("version")
@click.option("--note", default="", help="Why: kept with the version.")
@click.option("--yes", is_flag=True, help="Publish without asking.")
def rules_rollback(version: str, note: str, yes: bool) -> None:
    """Publish an earlier VERSION (a hash, its first characters, or #ID) again."""
    made = runtime(publish_first=False)
    found = made.store.versions.find(version)
    if found is None:
        raise click.ClickException(
            f"no single published version matches {version!r} (see `onstrategy rules history`)"
        )
    files = made.store.versions.version_files(found.id)
    draft, problems = rulebook_from_files(files)
    if draft is None:
        raise click.ClickException(f"version {found.version} no longer loads: {problems[0]}")
    _publish(made, files, draft, note or f"rollback to {found.version}", yes)


def _publish(made: Runtime, files: dict[str, bytes], draft: Rulebook, note: str, yes: bool) -> None:
    live = made.rules.refresh()
    with ChangeSpool() as spool:
        if live is not None:
            preview = _preview(made, live, draft, spool)
            print_summary(console, preview)
            if live.version == draft.version:
                console.print(f"Version {draft.version} is already live; nothing to publish.")
                return
        if not yes and not click.confirm(f"Publish version {draft.version}?", default=False):
            raise click.ClickException("not published")
        publication = publish_files(made, files, who=who_publishes(), note=note)
        console.print(f"Version {publication.version} is live (publication #{publication.id}).")
        jobs = queue_reevaluation(made, spool, publication, made.settings.crms)
        where = "queued for the workers" if made.redis is not None else "done"
        console.print(
            f"Re-evaluation of the changed opportunities: {sum(jobs.values())} job(s) {where}."
        )


def who_publishes() -> str:
    """Who publishes: ONSTRATEGY_PUBLISHER, else the signed-in user."""
    try:
        return os.environ.get("ONSTRATEGY_PUBLISHER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
