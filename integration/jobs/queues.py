"""The queue and the Redis keys every part of the jobs layer shares.

Kept apart from the job bodies and the intake so that both can use them without
importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from rq import Queue

QUEUE_NAME = "onstrategy"
SEEN_TTL = 7 * 24 * 3600
PENDING_TTL = 3600
JOB_TIMEOUT = 900


def seen_key(crm: str, key: str) -> str:
    return f"onstrategy:seen:{crm}:{key}"


def pending_key(crm: str, kind: str, object_id: str) -> str:
    return f"onstrategy:pending:{crm}:{kind}:{object_id}"


def make_queue(redis: Any) -> Queue:
    return Queue(QUEUE_NAME, connection=redis, default_timeout=JOB_TIMEOUT)


def clear_pending(redis: Any, crm: str, ids: Sequence[str], kind: str = "opportunity") -> None:
    """A job starting: later events for these records must queue a new evaluation."""
    if redis is not None and ids:
        redis.delete(*(pending_key(crm, kind, oid) for oid in ids))


def enqueue_later(
    redis: Any, delay: float, function: Any, args: tuple, kwargs: dict[str, Any]
) -> None:
    """Run ``function(*args, **kwargs)`` after ``delay`` seconds, by RQ's scheduler."""
    make_queue(redis).enqueue_in(timedelta(seconds=delay), function, *args, **kwargs)
