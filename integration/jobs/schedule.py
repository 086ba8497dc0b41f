"""Scheduled reconcile sweeps with RQ's own scheduler.

With ``ONSTRATEGY_RECONCILE_INTERVAL_MINUTES`` set, a worker makes sure one sweep
job is scheduled; each sweep catches webhooks that never arrived (changes since
the last sweep's start, kept in the store) and schedules the next one. Two fixed
job ids, taken in turn, mean several workers (or restarts) never start a second
chain of sweeps.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from rq import get_current_job

from integration.jobs.context import current as current_runtime
from integration.jobs.queues import make_queue
from integration.pipeline.sweep import reconcile_plan, run_sweep

log = logging.getLogger(__name__)
JOB_ID = "onstrategy-scheduled-reconcile"
#: The sweep alternates between two fixed ids: a running sweep schedules the next
#: under the other one (a job cannot be enqueued under the id it is running as), so
#: a worker starting at any moment finds the chain by id and never starts a second.
JOB_IDS = (JOB_ID, f"{JOB_ID}-next")
#: How far before the last sweep's start the next one reads changes.
LOOKBACK = timedelta(minutes=10)


def with_lookback(watermark: str) -> str | None:
    """The last sweep's start, moved back by ``LOOKBACK``: a change stamped just before
    it (clocks, a write in flight) is read again rather than missed. ``None``: never swept."""
    if not watermark:
        return None
    return (datetime.fromisoformat(watermark) - LOOKBACK).isoformat()


def schedule_reconcile(runtime: Any) -> bool:
    """Schedule the next sweep unless one is already waiting or running."""
    return _schedule_next(runtime, running=None)


def scheduled_reconcile() -> dict[str, int]:
    """Sweep every configured CRM for changes since the last sweep, then reschedule."""
    runtime = current_runtime()
    done = {}
    for crm in runtime.settings.crms:
        since = with_lookback(runtime.store.watermark(crm, "reconciled-at"))
        outcome = run_sweep(runtime, crm, reconcile_plan(runtime.rulebook(), since))
        done[crm] = outcome.evaluated
    job = get_current_job()
    _schedule_next(runtime, running=job.id if job else None)
    return done


def _schedule_next(runtime: Any, running: str | None) -> bool:
    """Schedule a sweep under the chain's other id, unless a sweep other than the
    ``running`` one is already scheduled, queued or running."""
    minutes = runtime.settings.reconcile_interval_minutes
    if not minutes or runtime.redis is None:
        return False
    queue = make_queue(runtime.redis)
    others = [job_id for job_id in JOB_IDS if job_id != running]
    if _waiting(queue, others):
        return False
    queue.enqueue_in(timedelta(minutes=minutes), scheduled_reconcile, job_id=others[0])
    return True


def _waiting(queue: Any, job_ids: list[str]) -> bool:
    """Whether any of these jobs is scheduled, queued or running."""
    present = (
        set(queue.scheduled_job_registry.get_job_ids())
        | set(queue.job_ids)
        | set(queue.started_job_registry.get_job_ids())
    )
    return any(job_id in present for job_id in job_ids)
