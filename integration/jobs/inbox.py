"""The worker side of the intake: webhook deliveries drained from the inbox into jobs.

A webhook only appends its events to the inbox (one Redis command, see
:mod:`integration.jobs.intake`); a ``drain_inbox`` job, queued by the delivery
that found no drain waiting, turns them into evaluation jobs here:

* redeliveries are skipped (a ``seen`` key per event key, kept a week), marked
  only after their work is queued so a crash never turns into a lost event;
* a burst for one record is coalesced: while a job for it is still waiting, a
  new event adds nothing (that job re-reads the record's current state when it
  runs). The job clears its ``pending`` markers as it starts, so an event that
  arrives mid-run queues a fresh evaluation;
* records from many deliveries share jobs of up to the CRM's job size
  (:func:`integration.domain.crms.job_size`: 500 HubSpot deals, 200 Salesforce
  opportunities), so the worker reads and writes them with full batch calls.

A drain that finds less than a job's worth waiting, and nothing else queued, first
waits up to ``ONSTRATEGY_BATCH_WAIT_MS`` for the rest of a burst (see :func:`gather`):
a free worker would otherwise turn each delivery into a job of its own, and a job
of one delivery costs the CRM as many calls as a full one. With work queued it
never waits, so a backlog is never slowed.

Entries leave the inbox only after their jobs are queued; a drain that dies
half-way leaves them for the next one, which skips what was already queued.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from redis.exceptions import LockError

from integration.domain.crms import REMOTE_CRMS, job_size
from integration.domain.events import ChangeEvent
from integration.jobs import handlers as jobs
from integration.jobs.context import current as runtime
from integration.jobs.queues import (
    DRAIN_ARMED_KEY,
    DRAIN_LOCK_KEY,
    INBOX_KEY,
    PENDING_TTL,
    SEEN_TTL,
    decode_event,
    make_queue,
    pending_key,
    seen_key,
)
from integration.pipeline.processor import RetryLater

log = logging.getLogger(__name__)

DRAIN_BATCH = 1000  # inbox entries read at a time
DRAIN_LOCK_TTL = 120
DRAIN_LOCK_WAIT = 10
GATHER_POLL = 0.02  # seconds between looks at the inbox while a drain gathers


#: An event of the first kind makes an earlier one of the second kind for the same record moot.
SUPERSEDES = {"deleted": "opportunity", "opportunity": "deleted"}


class EventsByKind:
    """Change events grouped by CRM, then kind, as record id -> event key.

    The shape both intakes plan jobs from: ``by_crm[crm]["opportunity" | "account" |
    "deleted"]``. For a record both changed and deleted in the same events, the later
    event wins (events come in the order they arrived): deleted, then no job evaluates
    a deal its own batch says is gone; restored (HubSpot's ``deal.restore``) or
    changed after the deletion, it is evaluated and not forgotten.
    """

    def __init__(self, events: Iterable[ChangeEvent]) -> None:
        self.by_crm: dict[str, dict[str, dict[str, str]]] = {}
        for event in events:
            kinds = self.by_crm.setdefault(
                event.crm, {"opportunity": {}, "account": {}, "deleted": {}}
            )
            if event.kind in SUPERSEDES:
                kinds[SUPERSEDES[event.kind]].pop(event.object_id, None)
            kinds[event.kind][event.object_id] = event.key


class JobPlanner:
    """Queues the evaluation jobs for a set of events: de-duplicated and coalesced."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.queue = make_queue(redis)

    def submit(self, events: Sequence[ChangeEvent]) -> int:
        """Queue the work of ``events``; return how many were not redeliveries."""
        fresh = self._unseen(events)
        for crm, kinds in EventsByKind(fresh).by_crm.items():
            self._enqueue_coalesced(crm, "opportunity", kinds["opportunity"])
            self._enqueue_coalesced(crm, "account", kinds["account"])
            if kinds["deleted"]:
                self.queue.enqueue(
                    jobs.forget_opportunities, crm, list(kinds["deleted"]), kinds["deleted"]
                )
        self._mark_seen(fresh)
        return len(fresh)

    def _unseen(self, events: Sequence[ChangeEvent]) -> list[ChangeEvent]:
        pipe = self.redis.pipeline(transaction=False)
        for event in events:
            pipe.exists(seen_key(event.crm, event.key))
        flags = pipe.execute() if events else []
        return [event for event, seen in zip(events, flags, strict=True) if not seen]

    def _enqueue_coalesced(self, crm: str, kind: str, keys: dict[str, str]) -> None:
        ids, size = list(keys), job_size(crm)
        for start in range(0, len(ids), size):
            self._enqueue_batch(crm, kind, {oid: keys[oid] for oid in ids[start : start + size]})

    def _enqueue_batch(self, crm: str, kind: str, keys: dict[str, str]) -> None:
        job_id = f"onstrategy-{kind}-{uuid.uuid4().hex}"
        pipe = self.redis.pipeline(transaction=False)
        for object_id in keys:
            pipe.set(pending_key(crm, kind, object_id), job_id, nx=True, ex=PENDING_TTL)
        claimed = [oid for oid, ok in zip(keys, pipe.execute(), strict=True) if ok]
        if not claimed:
            return  # every record already has a job waiting: coalesced
        try:
            if kind == "opportunity":
                event_keys = {oid: keys[oid] for oid in claimed}
                self.queue.enqueue(
                    jobs.evaluate_opportunities, crm, claimed, event_keys, job_id=job_id
                )
            else:
                self.queue.enqueue(jobs.evaluate_accounts, crm, claimed, job_id=job_id)
        except Exception:
            self.redis.delete(*(pending_key(crm, kind, oid) for oid in claimed))
            raise

    def _mark_seen(self, events: Sequence[ChangeEvent]) -> None:
        if not events:
            return
        pipe = self.redis.pipeline(transaction=False)
        for event in events:
            pipe.set(seen_key(event.crm, event.key), 1, ex=SEEN_TTL)
        pipe.execute()


@jobs.retried
def drain_inbox() -> dict[str, int]:
    """Turn every delivery waiting in the inbox into jobs (one drain at a time)."""
    redis = runtime().redis
    lock = redis.lock(DRAIN_LOCK_KEY, timeout=DRAIN_LOCK_TTL, blocking_timeout=DRAIN_LOCK_WAIT)
    if not lock.acquire():
        raise RetryLater("another drain is reading the inbox")
    try:
        settings = runtime().settings
        full = max((job_size(crm) for crm in settings.crms if crm in REMOTE_CRMS), default=0)
        gather(redis, settings.batch_wait_ms / 1000, full)
        # Disarm first: a delivery appended from now on queues a drain of its own.
        redis.delete(DRAIN_ARMED_KEY)
        return drain(redis, lock.reacquire)
    except LockError as exc:  # lost mid-drain: what is left stays for the next drain
        raise RetryLater(f"inbox drain lost its lock: {exc}") from exc
    finally:
        try:
            lock.release()
        except LockError:  # held past its timeout; the next drain re-reads what is left
            log.warning("inbox drain outlived its lock")


def gather(redis: Any, wait: float, full: int) -> float:
    """Wait up to ``wait`` seconds while the inbox holds fewer than ``full`` entries and no
    other job is queued; return the seconds waited.

    Runs while the drain is still armed, so the deliveries it waits for append without
    queueing drains of their own. Only remote CRMs set ``full``: the sandbox's calls
    cost nothing, so its drains never wait.
    """
    started = time.monotonic()
    if wait <= 0 or full <= 0:
        return 0.0
    queue = make_queue(redis)
    while time.monotonic() - started < wait and redis.llen(INBOX_KEY) < full and not queue.count:
        time.sleep(GATHER_POLL)
    return time.monotonic() - started


def drain(redis: Any, still_mine: Callable[[], Any]) -> dict[str, int]:
    """Plan jobs for the inbox's entries, oldest first, then remove them.

    ``still_mine`` renews the drain's lock before entries are removed and raises
    when it was lost, so two drains never trim entries the other has not planned.
    """
    planner = JobPlanner(redis)
    read = fresh = 0
    while raw := redis.lrange(INBOX_KEY, 0, DRAIN_BATCH - 1):
        fresh += planner.submit(_decoded(raw))
        still_mine()
        redis.ltrim(INBOX_KEY, len(raw), -1)
        read += len(raw)
    return {"read": read, "new": fresh}


def _decoded(raw: Sequence[bytes]) -> list[ChangeEvent]:
    events = []
    for entry in raw:
        try:
            events.append(decode_event(entry))
        except ValueError as exc:  # not written by this service's intake: nothing to do
            log.error("inbox entry skipped: %s", exc)
    return events
