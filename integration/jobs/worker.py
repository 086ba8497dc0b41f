"""RQ workers and the failed-job registry, for ``onstrategy worker`` and ``jobs``."""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Any

from redis import RedisError
from rq import SimpleWorker

from integration.jobs.context import bound
from integration.jobs.handlers import listen_for_target_changes
from integration.jobs.intake import drain_waiting
from integration.jobs.queues import make_queue, usage_key
from integration.jobs.schedule import schedule_periodic

if TYPE_CHECKING:
    from integration.runtime import Runtime

log = logging.getLogger(__name__)

#: Seconds between heartbeats of a running job; its registry entry lives 60 s longer.
HEARTBEAT = 10
#: Seconds between registry clean-ups (which find abandoned jobs and retry them).
MAINTENANCE = 30
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(: |$)")


class Worker(SimpleWorker):
    """An RQ worker that runs every job with the runtime it was started with.

    A ``SimpleWorker`` runs jobs in this process instead of forking one per job:
    the CRM clients' connection pools, the HubSpot owner/pipeline caches and the
    store's database pool are reused from job to job, and a database connection
    is never shared between a parent and a forked child. Job timeouts still
    apply (RQ enforces them with a signal). Run several workers for parallelism.
    """

    def __init__(self, runtime: Runtime, **options: Any) -> None:
        options.setdefault("job_monitoring_interval", HEARTBEAT)
        options.setdefault("maintenance_interval", MAINTENANCE)
        # An idle worker wakes from its queue wait every worker_ttl - 15 s to run the
        # maintenance (RQ's default is 405 s): the abandoned-job check needs it sooner.
        options.setdefault("worker_ttl", MAINTENANCE + 15)
        super().__init__([make_queue(runtime.redis)], connection=runtime.redis, **options)
        self.runtime = runtime
        self.push_exc_handler(_no_rq_retry)

    def execute_job(self, job: Any, queue: Any) -> Any:
        """Run ``job`` with the runtime bound, its heartbeat kept by a thread meanwhile.

        A ``SimpleWorker`` has no monitoring process to keep the heartbeat, so a
        long job would look abandoned; the thread keeps it alive every
        ``HEARTBEAT`` seconds, and stops with the process (a killed worker's job
        is found abandoned a minute later and retried).
        """
        done = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job, done), daemon=True)
        beat.start()
        try:
            with bound(self.runtime):
                return super().execute_job(job, queue)
        finally:
            done.set()
            beat.join(timeout=5)
            publish_usage(self.runtime)

    def get_heartbeat_ttl(self, job: Any) -> int:
        """How long the job's started entry lives without a heartbeat: a minute past the
        next beat (``SimpleWorker`` would give the whole job timeout, 15 minutes)."""
        return HEARTBEAT + 60

    def _beat(self, job: Any, done: threading.Event) -> None:
        while not done.wait(HEARTBEAT):
            try:
                self.maintain_heartbeats(job)
            except Exception:  # the next beat tries again; the job itself goes on
                log.warning("heartbeat for job %s failed", job.id, exc_info=True)


def _no_rq_retry(job: Any, *exc_info: Any) -> bool:
    """A job that raised goes to the failed registry: RQ's retry is for dead workers only."""
    job.retries_left = 0
    return True


def publish_usage(runtime: Runtime) -> None:
    """Share the CRMs' daily API usage this worker saw, for ``/metrics`` on any host."""
    usage = runtime.api_usage()
    if runtime.redis is None or not usage:
        return
    pipe = runtime.redis.pipeline(transaction=False)
    for crm, (used, limit) in usage.items():
        pipe.hset(usage_key(crm), mapping={"used": used, "limit": limit})
    try:
        pipe.execute()
    except RedisError:
        log.warning("could not publish the CRM API usage")


def run_worker(runtime: Runtime, burst: bool = False) -> bool:
    """Work the project's queue; the scheduler runs retries and scheduled sweeps."""
    listen_for_target_changes(runtime)
    schedule_periodic(runtime)
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
        rows.append((job.id, job.func_name.rsplit(".", 1)[-1], reason_line(reason)))
    return rows


def reason_line(traceback_text: str) -> str:
    """The exception's own line (``Type: message``) of a traceback, not the trailer
    some libraries add after it (SQLAlchemy's "(Background on this error at: ...)")."""
    lines = traceback_text.strip().splitlines()
    for line in reversed(lines):
        if EXCEPTION_LINE.match(line):
            return line
    return lines[-1] if lines else ""


def requeue(runtime: Runtime, job_ids: list[str], everything: bool) -> int:
    if runtime.redis is None:
        return 0
    registry = make_queue(runtime.redis).failed_job_registry
    ids = registry.get_job_ids() if everything else job_ids
    for job_id in ids:
        registry.requeue(job_id)
    return len(ids)
