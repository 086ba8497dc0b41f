"""RQ workers and the failed-job registry, for ``onstrategy worker`` and ``jobs``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rq import SimpleWorker

from integration.jobs.context import bound
from integration.jobs.handlers import listen_for_target_changes
from integration.jobs.intake import drain_waiting
from integration.jobs.queues import make_queue
from integration.jobs.schedule import schedule_reconcile

if TYPE_CHECKING:
    from integration.runtime import Runtime


class Worker(SimpleWorker):
    """An RQ worker that runs every job with the runtime it was started with.

    A ``SimpleWorker`` runs jobs in this process instead of forking one per job:
    the CRM clients' connection pools, the HubSpot owner/pipeline caches and the
    store's database pool are reused from job to job, and a database connection
    is never shared between a parent and a forked child. Job timeouts still
    apply (RQ enforces them with a signal). Run several workers for parallelism.
    """

    def __init__(self, runtime: Runtime, **options: Any) -> None:
        super().__init__([make_queue(runtime.redis)], connection=runtime.redis, **options)
        self.runtime = runtime

    def execute_job(self, job: Any, queue: Any) -> Any:
        with bound(self.runtime):
            return super().execute_job(job, queue)


def run_worker(runtime: Runtime, burst: bool = False) -> bool:
    """Work the project's queue; the scheduler runs retries and scheduled sweeps."""
    listen_for_target_changes(runtime)
    schedule_reconcile(runtime)
    drain_waiting(runtime.redis)
    return Worker(runtime).work(burst=burst, with_scheduler=True)


def failed_jobs(runtime: Runtime) -> list[tuple[str, str, str]]:
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
        lines = reason.strip().splitlines()
        rows.append((job.id, job.func_name.rsplit(".", 1)[-1], lines[-1] if lines else ""))
    return rows


def requeue(runtime: Runtime, job_ids: list[str], everything: bool) -> int:
    if runtime.redis is None:
        return 0
    registry = make_queue(runtime.redis).failed_job_registry
    ids = registry.get_job_ids() if everything else job_ids
    for job_id in ids:
        registry.requeue(job_id)
    return len(ids)
