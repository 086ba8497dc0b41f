"""Sweeps over many opportunities: reconcile and target-list sync.

A sweep streams pages from the CRM (memory stays flat), runs each page through
the same pipeline as a webhook, and keeps a cursor in the store so an
interrupted sweep continues where it stopped. A second run writes nothing:
only changed values are ever written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from connectors.base import OpportunityQuery
from integration.coaching import CoachingOutcome, CoachingSync
from integration.model import OpportunityRecord
from integration.processor import BatchOutcome
from integration.rulebook import Rulebook
from integration.runtime import Runtime

Progress = Callable[[int], None]

#: Records per page in sweeps: Salesforce's largest query batch; connectors with
#: smaller batches (HubSpot: 100) page by their own size.
PAGE = 2000


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep will look at, and under which name its cursor is kept."""

    name: str
    query: OpportunityQuery


def reconcile_plan(rulebook: Rulebook, since: str | None) -> SweepPlan:
    """Changed since ``since`` (missed webhooks), or every open opportunity."""
    freeze = rulebook.ruleset.freeze_closed_before
    if since:
        return SweepPlan(
            f"reconcile-since-{since}", OpportunityQuery(modified_since=since, page_size=PAGE)
        )
    return SweepPlan(
        "reconcile-open", OpportunityQuery(open_only=True, closed_after=freeze, page_size=PAGE)
    )


def target_plan(rulebook: Rulebook, accounts: list[str] | None) -> SweepPlan:
    """Opportunities of the accounts whose list membership changed (all, the first time)."""
    query = OpportunityQuery(
        account_ids=accounts,
        open_only=True,
        closed_after=rulebook.ruleset.freeze_closed_before,
        page_size=PAGE,
    )
    return SweepPlan("targets-sync", query)


def changed_target_accounts(runtime: Runtime, crm: str, rulebook: Rulebook) -> list[str] | None:
    """Accounts added to or removed from the CSV since the last sync; ``None``: never synced."""
    previous = runtime.store.watermark(crm, "targets-accounts")
    current = sorted(rulebook.targets.accounts.get(crm, frozenset()))
    if not previous:
        return None
    return sorted(set(json.loads(previous)) ^ set(current))


def remember_targets(runtime: Runtime, crm: str, rulebook: Rulebook) -> None:
    current = sorted(rulebook.targets.accounts.get(crm, frozenset()))
    runtime.store.set_watermark(crm, "targets-accounts", json.dumps(current))


def run_sweep(
    runtime: Runtime,
    crm: str,
    plan: SweepPlan,
    *,
    dry_run: bool = False,
    trigger: str = "reconcile",
    progress: Progress | None = None,
) -> BatchOutcome:
    """Run ``plan`` through the pipeline page by page; resumable unless dry."""
    started = datetime.now(UTC).isoformat()
    processor = runtime.processor(
        crm, trigger=trigger, dry_run=dry_run, keep_planned=dry_run, promote=False
    )
    cursor_name = f"cursor:{plan.name}"
    cursor = "" if dry_run else runtime.store.watermark(crm, cursor_name)
    total = BatchOutcome()
    for page in _pages_after(runtime.connector(crm).iter_opportunities(plan.query), cursor):
        total.add(processor.process_records(page))
        if not dry_run:
            runtime.store.set_watermark(crm, cursor_name, page[-1].id)
        if progress:
            progress(len(page))
    if not dry_run:
        runtime.store.set_watermark(crm, cursor_name, "")
        runtime.store.set_watermark(crm, "reconciled-at", started)
        total.add_coaching(refresh_coaching(runtime, crm))
    return total


def refresh_coaching(runtime: Runtime, crm: str) -> CoachingOutcome:
    """Completed tasks free their slots; the next queued tasks are created."""
    sync = CoachingSync(
        runtime.connector(crm), runtime.store.tasks,
        runtime.rulebook().ruleset.max_open_per_rep, runtime.today,
    )  # fmt: skip
    return sync.refresh()


def sync_targets(
    runtime: Runtime, crm: str, *, dry_run: bool = False, progress: Progress | None = None
) -> tuple[list[str] | None, BatchOutcome | None]:
    """Re-evaluate the opportunities of accounts whose list membership changed.

    Returns the changed accounts (``None``: first sync, every open opportunity)
    and the outcome (``None`` when nothing changed since the last sync).
    """
    rulebook = runtime.rulebook()
    accounts = changed_target_accounts(runtime, crm, rulebook)
    if accounts == []:
        return [], None
    outcome = run_sweep(runtime, crm, target_plan(rulebook, accounts), dry_run=dry_run,
                        trigger="targets", progress=progress)  # fmt: skip
    if not dry_run:
        remember_targets(runtime, crm, rulebook)
    return accounts, outcome


def _pages_after(
    pages: Iterator[list[OpportunityRecord]], cursor: str
) -> Iterator[list[OpportunityRecord]]:
    """Skip what an interrupted run already did (pages come in id order)."""
    for page in pages:
        remaining = [r for r in page if not cursor or r.id > cursor]
        if remaining:
            yield remaining
