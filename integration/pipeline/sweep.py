"""Sweeps over many opportunities: reconcile and target-list sync.

A sweep streams pages from the CRM (memory stays flat), runs each page through
the same pipeline as a webhook, and keeps its run key in the store so an
interrupted sweep continues where it stopped. A second run writes nothing:
only changed values are ever written.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from connectors.base import OpportunityQuery
from integration.engine.rulebook import Rulebook
from integration.pipeline.coaching import CoachingOutcome
from integration.pipeline.processor import BatchOutcome

if TYPE_CHECKING:
    from integration.runtime import Runtime

Progress = Callable[[int], None]

#: Records per page in sweeps: Salesforce's largest query batch; connectors with
#: smaller batches (HubSpot: 100) page by their own size.
PAGE = 2000


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep will look at, and under which name its run is kept."""

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
    """Run ``plan`` through the pipeline page by page; resumable unless dry.

    Each run has a key, kept in the store until the run completes and recorded
    on every decision it makes; a run that was interrupted is continued under
    the same key, skipping the opportunities it already decided, whatever order
    the CRM returns them in.
    """
    started = datetime.now(UTC).isoformat()
    processor = runtime.processor(
        crm, trigger=trigger, dry_run=dry_run, keep_planned=dry_run, promote=False
    )
    run_name = f"run:{plan.name}"
    run_key = "" if dry_run else _run_key(runtime, crm, run_name)
    total = BatchOutcome()
    for page in runtime.connector(crm).iter_opportunities(plan.query):
        done = runtime.store.decided_with_key(crm, [r.id for r in page], run_key) if run_key else ()
        remaining = [r for r in page if r.id not in done]
        if remaining:
            keys = {r.id: run_key for r in remaining} if run_key else None
            total.add(processor.process_records(remaining, keys))
        if progress:
            progress(len(page))
    if not dry_run:
        runtime.store.set_watermark(crm, run_name, "")
        runtime.store.set_watermark(crm, "reconciled-at", started)
        total.add_coaching(refresh_coaching(runtime, crm))
    return total


def _run_key(runtime: Runtime, crm: str, run_name: str) -> str:
    """The key of the unfinished run of this sweep, or a new one."""
    key = runtime.store.watermark(crm, run_name)
    if not key:
        key = f"sweep:{uuid.uuid4().hex}"
        runtime.store.set_watermark(crm, run_name, key)
    return key


def refresh_coaching(runtime: Runtime, crm: str) -> CoachingOutcome:
    """Completed tasks free their slots; the next queued tasks are created."""
    return runtime.coaching(crm).refresh()


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
    outcome = run_sweep(
        runtime,
        crm,
        target_plan(rulebook, accounts),
        dry_run=dry_run,
        trigger="targets",
        progress=progress,
    )
    if not dry_run:
        remember_targets(runtime, crm, rulebook)
    return accounts, outcome
