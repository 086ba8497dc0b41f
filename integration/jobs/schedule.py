"""Scheduled reconcile sweeps with RQ's own scheduler.

With ``ONSTRATEGY_RECONCILE_INTERVAL_MINUTES`` set, a worker makes sure one sweep
job is scheduled; each sweep catches webhooks that never arrived (changes since
the last sweep's start, kept in the store) and schedules the next one. A fixed
job id means several workers never schedule the same sweep twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from integration.jobs.context import current as current_runtime
from integration.jobs.queues import make_queue
from integration.pipeline.sweep import reconcile_plan, run_sweep

log = logging.getLogger(__name__)
JOB_ID = "onstrategy-scheduled-reconcile"
#: How far before the last sweep's start the next one reads changes.
LOOKBACK = timedelta(minutes=10)


def with_lookback(watermark: str) -> str | None:
    """The last sweep's start, moved back by ``LOOKBACK``: a change stamped just before
    it (clocks, a write in flight) is read again rather than missed. ``None``: never swept."""
    if not watermark:
        return None
    return (datetime.fromisoformat(watermark) - LOOKBACK).isoformat()


def schedule_reconcile(runtime: Any) -> bool:
    """Schedule the next sweep unless one is already waiting."""
    minutes = runtime.settings.reconcile_interval_minutes
    if not minutes or runtime.redis is None:
        return False
    queue = make_queue(runtime.redis)
    if JOB_ID in queue.scheduled_job_registry.get_job_ids() or JOB_ID in queue.job_ids:
        return False
    queue.enqueue_in(timedelta(minutes=minutes), scheduled_reconcile, job_id=JOB_ID)
    return True


def scheduled_reconcile() -> dict[str, int]:
    """Sweep every configured CRM for changes since the last sweep, then reschedule."""
    runtime = current_runtime()
    done = {}
    for crm in runtime.settings.crms:
        since = with_lookback(runtime.store.watermark(crm, "reconciled-at"))
        outcome = run_sweep(runtime, crm, reconcile_plan(runtime.rulebook(), since))
        done[crm] = outcome.evaluated
    make_queue(runtime.redis).enqueue_in(
        timedelta(minutes=runtime.settings.reconcile_interval_minutes),
        scheduled_reconcile,
    )
    return done
