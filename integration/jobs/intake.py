"""Durable intake of change events on Redis, with an in-process twin.

``RedisIntake.submit`` is the whole of a webhook's Redis work, at most two round
trips, so a web worker spends its time on HTTP and not on queueing:

1. one script call (atomic) appends the events whose key was never seen to the
   inbox list and, when no drain is waiting, arms one;
2. only when it armed: one pipelined ``enqueue`` of a ``drain_inbox`` job.

It returns only when the events are in Redis, so a webhook is acknowledged only
after that, and raises :class:`QueueUnavailable` (the webhook answers 503) when
Redis cannot take them. De-duplication against earlier deliveries, coalescing
of bursts per record and batching into jobs happen in the drain
(:mod:`integration.jobs.inbox`), off the request path. Why this design and not
an enqueue per delivery: see "Webhook intake" in the README.

Without Redis (the embedded default) :class:`InlineIntake` runs the same jobs
in-process before returning.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis import RedisError

from integration.domain.events import ChangeEvent, QueueUnavailable
from integration.jobs import handlers as jobs
from integration.jobs.context import bound
from integration.jobs.inbox import EventsByKind, drain_inbox
from integration.jobs.queues import (
    DRAIN_ARM_TTL,
    DRAIN_ARMED_KEY,
    INBOX_KEY,
    encode_event,
    make_queue,
    seen_key,
)

if TYPE_CHECKING:
    from integration.runtime import Runtime

log = logging.getLogger(__name__)

#: KEYS: inbox, armed flag, one seen key per event; ARGV: arm TTL, one entry per event.
#: Appends the entries whose seen key is absent; arms a drain when none is armed.
#: Returns {appended, armed}.
_APPEND = """
local fresh = {}
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then fresh[#fresh + 1] = ARGV[i - 1] end
end
if #fresh == 0 then return {0, 0} end
redis.call('RPUSH', KEYS[1], unpack(fresh))
local armed = redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[1]))
if armed then return {#fresh, 1} end
return {#fresh, 0}
"""


class RedisIntake:
    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.queue = make_queue(redis)
        self._append = redis.register_script(_APPEND)

    def submit(self, events: Sequence[ChangeEvent]) -> int:
        """Append ``events`` durably; return how many were not known redeliveries."""
        if not events:
            return 0
        keys = [INBOX_KEY, DRAIN_ARMED_KEY, *(seen_key(e.crm, e.key) for e in events)]
        args = [DRAIN_ARM_TTL, *map(encode_event, events)]
        try:
            appended, armed = self._append(keys=keys, args=args)
            if armed:
                self._start_drain()
        except RedisError as exc:
            raise QueueUnavailable(f"Redis: {exc}") from exc
        return int(appended)

    def _start_drain(self) -> None:
        """Queue a drain job in one round trip; disarm when that fails so the next delivery
        (HubSpot and Salesforce redeliver after a non-2xx) arms again."""
        try:
            start_drain(self.redis, self.queue)
        except RedisError:
            with contextlib.suppress(RedisError):  # else the arm expires by itself
                self.redis.delete(DRAIN_ARMED_KEY)
            raise


def start_drain(redis: Any, queue: Any = None) -> None:
    """Queue one ``drain_inbox`` job, ahead of the evaluations (one pipelined round trip)."""
    pipe = redis.pipeline(transaction=True)
    (queue or make_queue(redis)).enqueue(
        drain_inbox,
        job_id=f"onstrategy-drain-{uuid.uuid4().hex}",
        at_front=True,  # planning is cheap and lets later events coalesce into waiting jobs
        pipeline=pipe,
    )
    pipe.execute()


def drain_waiting(redis: Any) -> bool:
    """A worker starting: queue a drain if deliveries wait with none armed (say, after a
    crash between the append and the drain's enqueue)."""
    if redis.llen(INBOX_KEY) and redis.set(DRAIN_ARMED_KEY, 1, nx=True, ex=DRAIN_ARM_TTL):
        start_drain(redis)
        return True
    return False


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
        for crm, kinds in EventsByKind(fresh).by_crm.items():
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
