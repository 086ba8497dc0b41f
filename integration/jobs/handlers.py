"""Job functions the workers run (RQ or in-process), and their retry policy.

Every job re-reads the CRM's current state, so running one twice is harmless.
Only transient failures (rate limits, 5xx, timeouts, lock contention, a ruleset
that is momentarily invalid) are retried, on a backoff schedule; anything else
fails at once and lands in RQ's failed registry with its reason, where
``onstrategy jobs failed`` lists it and ``onstrategy jobs requeue`` retries it.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from connectors.base import ConnectorError, OpportunityQuery
from integration.engine.rulebook import RulesUnavailable
from integration.jobs.context import current as runtime
from integration.jobs.queues import clear_pending, enqueue_later, make_queue
from integration.pipeline.processor import BatchOutcome, RetryLater
from integration.pipeline.sweep import refresh_coaching
from integration.pipeline.sweep import sync_targets as sweep_targets
from integration.store.database import is_outage

if TYPE_CHECKING:
    from integration.runtime import Runtime

log = logging.getLogger(__name__)

#: Seconds before retry n (1-based); the list is the schedule, with +-20 % jitter.
BACKOFF = (10, 30, 120, 600, 1800)


def is_transient(exc: BaseException) -> bool:
    """Worth running again later: the CRM or the store was briefly unavailable."""
    if isinstance(exc, ConnectorError):
        return exc.retryable
    if is_outage(exc):
        return True
    return isinstance(exc, RetryLater | RulesUnavailable | TimeoutError | ConnectionError)


def backoff(attempt: int, retry_after: float | None = None) -> float:
    base = BACKOFF[min(attempt, len(BACKOFF)) - 1]
    delay = base * random.uniform(0.8, 1.2)
    return max(delay, retry_after or 0)


def retried(job: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``job``; on a transient failure, schedule the same job with the same arguments.

    The retry is the decorated function itself, enqueued later with ``attempt``
    one higher, so every job gets the same policy without naming itself. After
    the last scheduled retry the error is raised and RQ files the job, with its
    reason, in the failed registry; errors that are not transient go there at once.
    """

    @functools.wraps(job)
    def run(*args: Any, attempt: int = 1, **kwargs: Any) -> Any:
        try:
            return job(*args, **kwargs)
        except Exception as exc:
            if not is_transient(exc) or attempt > len(BACKOFF):
                raise
            redis = runtime().redis
            if redis is None:
                raise  # in-process: the caller answers at once (a webhook gets 503)
            delay = backoff(attempt, getattr(exc, "retry_after", None))
            log.warning("%s%s: %s; retry %d in %.0fs", job.__name__, args[:1], exc, attempt, delay)
            enqueue_later(redis, delay, run, args, {**kwargs, "attempt": attempt + 1})
            return {"retry": attempt + 1, "in_seconds": round(delay)}

    return run


@retried
def evaluate_opportunities(
    crm: str, ids: Sequence[str], event_keys: dict[str, str] | None = None
) -> dict[str, Any]:
    """Bring these opportunities in step with the rules (a webhook's work)."""
    rt = runtime()
    clear_pending(rt.redis, crm, ids)
    outcome = rt.processor(crm).process_ids(list(ids), event_keys)
    rt.store.mark_events(crm, {key: opp for opp, key in (event_keys or {}).items()})
    return _summary(outcome)


@retried
def evaluate_accounts(crm: str, account_ids: Sequence[str]) -> dict[str, Any]:
    """Re-evaluate every affected opportunity of these accounts (target list, firmographics)."""
    rt = runtime()
    query = OpportunityQuery(
        account_ids=list(account_ids),
        open_only=True,
        closed_after=rt.rulebook().ruleset.freeze_closed_before,
    )
    total = BatchOutcome()
    processor = rt.processor(crm, trigger="account", promote=False)
    for page in rt.connector(crm).iter_opportunities(query):
        total.add(processor.process_records(page))
    total.add_coaching(refresh_coaching(rt, crm))
    return _summary(total)


def forget_opportunities(
    crm: str, ids: Sequence[str], event_keys: dict[str, str] | None = None
) -> int:
    """Deleted or merged-away records: their coaching tasks stop counting against the cap."""
    rt = runtime()
    outcome = rt.coaching(crm).forget(list(ids))
    rt.store.forget_states(crm, list(ids))
    rt.store.mark_events(crm, {key: opp for opp, key in (event_keys or {}).items()})
    return len(outcome.closed)


@retried
def sync_targets(crm: str) -> dict[str, Any]:
    """The target list file changed: re-evaluate the affected opportunities."""
    accounts, outcome = sweep_targets(runtime(), crm)
    result = _summary(outcome) if outcome else {"evaluated": 0}
    return {**result, "accounts": "all" if accounts is None else len(accounts)}


def listen_for_target_changes(rt: Runtime) -> None:
    """Queue a target sync whenever this process notices a new target list (Redis only)."""
    if rt.redis is not None:
        rt.target_listeners.append(lambda old, new: on_targets_changed(rt, old, new))


def on_targets_changed(rt: Runtime, previous: Any, current: Any) -> None:
    """Queue a target sync per CRM when a process notices a new target list file."""
    version = "".join(ch if ch.isalnum() else "-" for ch in current.targets.version)
    for crm in rt.settings.crms:
        if rt.redis is None:
            continue  # in-process: `onstrategy targets sync` runs it when asked
        make_queue(rt.redis).enqueue(
            sync_targets, crm, job_id=f"onstrategy-targets-{crm}-{version}"
        )
        log.info("target list %s: sync queued for %s", current.targets.version, crm)


def _summary(outcome: BatchOutcome) -> dict[str, Any]:
    return {
        "evaluated": outcome.evaluated,
        "changed": outcome.changed,
        "failed": outcome.failed,
        "tags": dict(outcome.tags),
        "tasks_created": len(outcome.coaching.created),
        "tasks_closed": len(outcome.coaching.closed),
    }


@retried
def reevaluate_published(crm: str, ids: Sequence[str], publication: int) -> dict[str, Any]:
    """Bring these opportunities in step with a newly published version.

    The job names the publication it was queued for: a worker that has not yet
    noticed it asks the store now, so the work never runs under the older rules.
    """
    rt = runtime()
    if (rt.rules.live_id or 0) < publication:
        rt.rules.refresh()
    if (rt.rules.live_id or 0) < publication:
        raise RulesUnavailable(rt.rules.problems)
    outcome = rt.processor(crm, trigger="publish").process_ids(list(ids))
    return _summary(outcome)


@retried
def refresh_coaching_job(crm: str) -> dict[str, Any]:
    """After a publish: free slots (a raised cap, closed tasks) take the next queued tasks."""
    outcome = refresh_coaching(runtime(), crm)
    return {"tasks_created": len(outcome.created), "queued": outcome.queued}
