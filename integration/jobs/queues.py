"""The queue, the inbox and the Redis keys every part of the jobs layer shares.

Kept apart from the job bodies and the intake so that both can use them without
importing each other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from rq import Queue, Retry
from rq.job import Job

from integration.domain.events import ChangeEvent

QUEUE_NAME = "onstrategy"
SEEN_TTL = 7 * 24 * 3600
PENDING_TTL = 3600
JOB_TIMEOUT = 900

#: Webhook deliveries waiting for a worker to plan their jobs (a Redis list).
INBOX_KEY = "onstrategy:inbox"
#: Set while a drain job is queued or about to run; the delivery that sets it queues one.
DRAIN_ARMED_KEY = "onstrategy:inbox:armed"
#: Held by the one drain that reads the inbox at a time.
DRAIN_LOCK_KEY = "onstrategy:inbox:lock"
#: A drain job lost with its worker stops blocking new drains after this many seconds.
DRAIN_ARM_TTL = 30


def usage_key(crm: str) -> str:
    """A hash of the CRM's daily API usage as the workers last saw it (``used``, ``limit``)."""
    return f"onstrategy:api-usage:{crm}"


def seen_key(crm: str, key: str) -> str:
    return f"onstrategy:seen:{crm}:{key}"


def pending_key(crm: str, kind: str, object_id: str) -> str:
    return f"onstrategy:pending:{crm}:{kind}:{object_id}"


#: Seconds before RQ runs again a job whose worker died mid-job (at most three times).
ABANDONED_RETRY_INTERVALS = [5, 30, 120]


class WorkQueue(Queue):
    """The project's queue: every job is enqueued with RQ's ``Retry``.

    The retry is for a job whose worker died (SIGKILL, lost machine): RQ finds
    it abandoned when its heartbeat stops and runs it again, so acknowledged
    work is never lost. A job that raises is not retried by RQ (the worker sets
    its retries to zero; transient failures are rescheduled by the job itself).
    """

    def create_job(self, *args: Any, **kwargs: Any) -> Job:
        if kwargs.get("retry") is None:
            kwargs["retry"] = Retry(
                max=len(ABANDONED_RETRY_INTERVALS), interval=ABANDONED_RETRY_INTERVALS
            )
        return super().create_job(*args, **kwargs)


def make_queue(redis: Any) -> Queue:
    return WorkQueue(QUEUE_NAME, connection=redis, default_timeout=JOB_TIMEOUT)


def clear_pending(redis: Any, crm: str, ids: Sequence[str], kind: str = "opportunity") -> None:
    """A job starting: later events for these records must queue a new evaluation."""
    if redis is not None and ids:
        redis.delete(*(pending_key(crm, kind, oid) for oid in ids))


def enqueue_later(
    redis: Any, delay: float, function: Any, args: tuple, kwargs: dict[str, Any]
) -> None:
    """Run ``function(*args, **kwargs)`` after ``delay`` seconds, by RQ's scheduler."""
    make_queue(redis).enqueue_in(timedelta(seconds=delay), function, *args, **kwargs)


def encode_event(event: ChangeEvent) -> str:
    """One inbox entry: the event as compact JSON (no pickle: the web tier writes it)."""
    return json.dumps(
        [
            event.crm,
            event.kind,
            event.object_id,
            event.key,
            list(event.changed_fields),
            event.occurred_at,
            event.source,
            event.extra,
        ],
        separators=(",", ":"),
    )


def decode_event(raw: bytes | str) -> ChangeEvent:
    """The event an inbox entry holds; ``ValueError`` when it is not one."""
    try:
        crm, kind, object_id, key, changed, occurred_at, source, extra = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not an inbox entry: {str(raw)[:80]!r}") from exc
    return ChangeEvent(
        str(crm), str(kind), str(object_id), str(key), tuple(changed), occurred_at, source, extra
    )
