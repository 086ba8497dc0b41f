"""RQ workers and the failed-job registry, for ``onstrategy worker`` and ``jobs``."""

from __future__ import annotations

from typing import Any

from integration.jobs.intake import make_queue


def run_worker(runtime: Any, burst: bool = False) -> bool:
    """Work the project's queue; the scheduler runs retries and scheduled sweeps.

    A ``SimpleWorker`` runs jobs in this process instead of forking one per job:
    the CRM clients' connection pools, the HubSpot owner/pipeline caches and the
    store's database pool are reused from job to job, and a database connection
    is never shared between a parent and a forked child. Job timeouts still
    apply (RQ enforces them with a signal). Run several workers for parallelism.
    """
    from rq import SimpleWorker

    from integration.jobs.schedule import schedule_reconcile

    schedule_reconcile(runtime)
    queue = make_queue(runtime.redis)
    worker = SimpleWorker([queue], connection=runtime.redis)
    return worker.work(burst=burst, with_scheduler=True)


def failed_jobs(runtime: Any) -> list[tuple[str, str, str]]:
    """(job id, function, last line of the reason) for every failed job."""
    if runtime.redis is None:
        return []
    queue = make_queue(runtime.redis)
    registry = queue.failed_job_registry
    rows = []
    for job in queue.job_class.fetch_many(registry.get_job_ids(), connection=runtime.redis):
        if job is None:
            continue
        reason = (job.latest_result().exc_string if job.latest_result() else "") or ""
        rows.append(
            (
                job.id,
                job.func_name.rsplit(".", 1)[-1],
                (reason.strip().splitlines()[-1:] and reason.strip().splitlines()[-1]) or "",
            )
        )
    return rows


def requeue(runtime: Any, job_ids: list[str], everything: bool) -> int:
    if runtime.redis is None:
        return 0
    registry = make_queue(runtime.redis).failed_job_registry
    ids = registry.get_job_ids() if everything else job_ids
    for job_id in ids:
        registry.requeue(job_id)
    return len(ids)
