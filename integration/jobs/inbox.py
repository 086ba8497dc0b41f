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

Entries leave the inbox only after their jobs are queued; a drain that dies
half-way leaves them for the next one, which skips what was already queued.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from redis.exceptions import LockError

from integration.domain.crms import job_size
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


class Work:
    """The jobs some events ask for, grouped by CRM and kind (record id -> event key)."""

    def __init__(self, events: Iterable[ChangeEvent]) -> None:
        self.by_crm: dict[str, dict[str, dict[str, str]]] = {}
        for event in events:
            kinds = self.by_crm.setdefault(
                event.crm, {"opportunity": {}, "account": {}, "deleted": {}}
            )
            kinds[event.kind][event.object_id] = event.key
        for kinds in self.by_crm.values():
            for deleted in kinds["deleted"]:
                kinds["opportunity"].pop(deleted, None)


class JobPlanner:
    """Queues the evaluation jobs for a set of events: de-duplicated and coalesced."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.queue = make_queue(redis)

    def submit(self, events: Sequence[ChangeEvent]) -> int:
        """Queue the work of ``events``; return how many were not redeliveries."""
        fresh = self._unseen(events)
        for crm, kinds in Work(fresh).by_crm.items():
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
