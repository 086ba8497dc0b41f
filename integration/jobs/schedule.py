"""Periodic jobs with RQ's own scheduler: reconcile sweeps and history pruning.

* With ``ONSTRATEGY_RECONCILE_INTERVAL_MINUTES`` set (default 60), a sweep catches
  webhooks that never arrived: changes since the last sweep's start, kept in the
  store.
* With ``ONSTRATEGY_PRUNE_INTERVAL_HOURS`` set (default 0: off), history older than
  ``ONSTRATEGY_RETENTION_DAYS`` is pruned, as ``onstrategy store prune`` does. Off
  unless asked for, since it deletes audit history.

A worker starting makes sure each enabled chain has one job scheduled; each job
schedules its successor when it has run. A chain alternates between two fixed job
ids (a job cannot be enqueued under the id it is running as), so a worker
starting at any moment finds the chain by id and never starts a second one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rq import get_current_job

from integration.jobs.context import current as current_runtime
from integration.jobs.queues import make_queue
from integration.pipeline.sweep import reconcile_plan, run_sweep
from integration.store.retention import prune

log = logging.getLogger(__name__)
JOB_ID = "onstrategy-scheduled-reconcile"
JOB_IDS = (JOB_ID, f"{JOB_ID}-next")
PRUNE_JOB_IDS = ("onstrategy-scheduled-prune", "onstrategy-scheduled-prune-next")
#: How far before the last sweep's start the next one reads changes.
LOOKBACK = timedelta(minutes=10)


def with_lookback(watermark: str) -> str | None:
    """The last sweep's start, moved back by ``LOOKBACK``: a change stamped just before
    it (clocks, a write in flight) is read again rather than missed. ``None``: never swept."""
    if not watermark:
        return None
    return (datetime.fromisoformat(watermark) - LOOKBACK).isoformat()


def scheduled_reconcile() -> dict[str, int]:
    """Sweep every configured CRM for changes since the last sweep, then reschedule."""
    runtime = current_runtime()
    done = {}
    for crm in runtime.settings.crms:
        since = with_lookback(runtime.store.watermark(crm, "reconciled-at"))
        outcome = run_sweep(runtime, crm, reconcile_plan(runtime.rulebook(), since))
        done[crm] = outcome.evaluated
    _schedule_next(runtime, RECONCILE, _running())
    return done


def scheduled_prune() -> dict[str, int]:
    """Delete history older than the retention period, then reschedule."""
    runtime = current_runtime()
    cutoff = datetime.now(UTC) - timedelta(days=runtime.settings.retention_days)
    removed = prune(runtime.store, cutoff)
    log.info("pruned history before %s: %s", cutoff.date(), removed)
    _schedule_next(runtime, PRUNE, _running())
    return removed


@dataclass(frozen=True)
class Chain:
    """One periodic job: its two ids, its function and how often it runs (``None``: off)."""

    job_ids: tuple[str, str]
    function: Callable[[], Any]
    interval: Callable[[Any], timedelta | None]


RECONCILE = Chain(
    JOB_IDS,
    scheduled_reconcile,
    lambda s: timedelta(minutes=s.reconcile_interval_minutes)
    if s.reconcile_interval_minutes
    else None,
)
PRUNE = Chain(
    PRUNE_JOB_IDS,
    scheduled_prune,
    lambda s: timedelta(hours=s.prune_interval_hours) if s.prune_interval_hours else None,
)
CHAINS = (RECONCILE, PRUNE)
#: Every periodic job id: what is always scheduled, so "idle" checks leave them out.
PERIODIC_JOB_IDS = tuple(job_id for chain in CHAINS for job_id in chain.job_ids)


def schedule_reconcile(runtime: Any) -> bool:
    """Schedule the next sweep unless one is already waiting or running."""
    return _schedule_next(runtime, RECONCILE, running=None)


def schedule_periodic(runtime: Any) -> list[str]:
    """A worker starting: start every enabled chain that has no job; the ids scheduled."""
    return [chain.job_ids[0] for chain in CHAINS if _schedule_next(runtime, chain, running=None)]


def _running() -> str | None:
    job = get_current_job()
    return job.id if job else None


def _schedule_next(runtime: Any, chain: Chain, running: str | None) -> bool:
    """Schedule ``chain`` under its id other than ``running``, unless a job of the chain
    other than the running one is already scheduled, queued or running."""
    every = chain.interval(runtime.settings)
    if every is None or runtime.redis is None:
        return False
    queue = make_queue(runtime.redis)
    others = [job_id for job_id in chain.job_ids if job_id != running]
    if _waiting(queue, others):
        return False
    queue.enqueue_in(every, chain.function, job_id=others[0])
    return True


def _waiting(queue: Any, job_ids: list[str]) -> bool:
    """Whether any of these jobs is scheduled, queued or running."""
    present = (
        set(queue.scheduled_job_registry.get_job_ids())
        | set(queue.job_ids)
        | set(queue.started_job_registry.get_job_ids())
    )
    return any(job_id in present for job_id in job_ids)
