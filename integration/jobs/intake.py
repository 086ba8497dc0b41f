"""Durable intake of change events on RQ + Redis, with an in-process twin.

``RedisIntake.submit`` returns only when every event's work is in Redis; a
webhook is acknowledged after that and never before. On the way in it

* skips redeliveries (a ``seen`` key per event key, kept a week), marking them
  only after the work is queued so a failure never turns into a lost event;
* coalesces a burst for one record: while a job for it is still waiting, a new
  event adds nothing (that job re-reads the record's current state when it
  runs). The job clears its ``pending`` markers as it starts, so an event that
  arrives mid-run queues a fresh evaluation;
* batches: one job per delivery carries all of its new records, so the worker
  reads and writes them with batch calls.

Without Redis (the embedded default) :class:`InlineIntake` runs the same jobs
in-process before returning.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from redis import RedisError

from integration.domain.events import ChangeEvent, QueueUnavailable
from integration.jobs import handlers as jobs
from integration.jobs.context import bound
from integration.jobs.queues import PENDING_TTL, SEEN_TTL, make_queue, pending_key, seen_key

if TYPE_CHECKING:
    from integration.runtime import Runtime

log = logging.getLogger(__name__)


class Work:
    """The jobs one delivery asks for, grouped by CRM and kind."""

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


class RedisIntake:
    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.queue = make_queue(redis)

    def submit(self, events: Sequence[ChangeEvent]) -> int:
        try:
            return self._submit(events)
        except RedisError as exc:
            raise QueueUnavailable(f"Redis: {exc}") from exc

    def _submit(self, events: Sequence[ChangeEvent]) -> int:
        fresh = self._unseen(events)
        work = Work(fresh)
        for crm, kinds in work.by_crm.items():
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
        if not keys:
            return
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


class InlineIntake:
    """Runs the work in this process before returning (no Redis configured)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.store = runtime.store

    def submit(self, events: Sequence[ChangeEvent]) -> int:
        fresh: list[ChangeEvent] = []
        for crm in {e.crm for e in events}:
            unseen = self.store.unseen_events(crm, [e.key for e in events if e.crm == crm])
            fresh.extend(e for e in events if e.crm == crm and e.key in unseen)
        try:
            with bound(self.runtime):
                self._run(fresh)
        except Exception as exc:
            log.exception("in-process work failed")
            raise QueueUnavailable(f"processing failed: {exc}") from exc
        return len(fresh)

    def _run(self, fresh: Sequence[ChangeEvent]) -> None:
        for crm, kinds in Work(fresh).by_crm.items():
            if kinds["opportunity"]:
                jobs.evaluate_opportunities(crm, list(kinds["opportunity"]), kinds["opportunity"])
            if kinds["account"]:
                jobs.evaluate_accounts(crm, list(kinds["account"]))
            if kinds["deleted"]:
                jobs.forget_opportunities(crm, list(kinds["deleted"]), kinds["deleted"])


def make_intake(runtime: Runtime) -> RedisIntake | InlineIntake:
    if runtime.redis is not None:
        return RedisIntake(runtime.redis)
    return InlineIntake(runtime)
