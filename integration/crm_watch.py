"""What the runtime keeps about the CRMs between calls, shared by every worker.

- :class:`TaskChecks`: which reps' coaching task states are due a CRM read;
- :class:`CrmAuthStatus` and :class:`AuthWatched`: the last authentication
  failure of each CRM, so ``/readyz`` can name a CRM whose credentials stopped
  working, wherever the failing call was made.

Shared through Redis when there is one (one key per rep or CRM), else kept in
the process. Kept apart from the runtime, which only composes the parts.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from redis import RedisError

from connectors.base import AuthError, Connector

log = logging.getLogger(__name__)


class TaskChecks:
    """Which reps' coaching task states are due a CRM read: once per rep per interval.

    A webhook job reads its reps' open tasks to notice ones a manager completed
    (freeing a slot for the next queued task). Read on every job, that is a CRM call
    per batch, about a tenth of all calls; once per rep per ``seconds`` (for every
    worker on every host when Redis is there, one key per rep) a completion is
    noticed that much later, and sweeps still read every rep. ``seconds`` 0: always.
    """

    def __init__(self, redis: Any, seconds: int, clock: Callable[[], float] = time.monotonic):
        self.redis, self.seconds, self.clock = redis, seconds, clock
        self._checked: dict[tuple[str, str], float] = {}

    def __call__(self, crm: str, reps: Sequence[str]) -> list[str]:
        if self.seconds <= 0 or not reps:
            return list(reps)
        if self.redis is None:
            return self._local(crm, reps)
        pipe = self.redis.pipeline(transaction=False)
        for rep in reps:
            pipe.set(f"onstrategy:task-check:{crm}:{rep}", 1, nx=True, ex=self.seconds)
        try:
            due = pipe.execute()
        except RedisError:
            return list(reps)  # cannot tell: read them all
        return [rep for rep, first in zip(reps, due, strict=True) if first]

    def _local(self, crm: str, reps: Sequence[str]) -> list[str]:
        now = self.clock()
        due = [r for r in reps if now - self._checked.get((crm, r), -1e18) >= self.seconds]
        self._checked.update(((crm, r), now) for r in due)
        return due


class CrmAuthStatus:
    """The last authentication failure of each CRM, until a call to it succeeds again.

    Workers make the CRM calls and the app answers ``/readyz``: with Redis the status
    is shared through one key per CRM, so the app names a CRM whose credentials a
    worker found revoked. Without Redis it is this process's own. A success clears
    the key at most every ``clear_seconds`` (not a Redis write per CRM call) and at
    once after a failure this process saw.
    """

    KEY = "onstrategy:crm-auth-failed:"

    def __init__(self, redis: Any, clear_seconds: float = 5.0) -> None:
        self.redis, self.clear_seconds = redis, clear_seconds
        self._failed: dict[str, str] = {}
        self._cleared_at: dict[str, float] = {}

    def failed(self, crm: str, error: AuthError) -> None:
        message = str(error).splitlines()[0][:300] if str(error) else "authentication failed"
        self._failed[crm] = message
        self._cleared_at.pop(crm, None)
        if self.redis is not None:
            try:
                self.redis.set(self.KEY + crm, message)
            except RedisError:
                log.warning("cannot record the %s authentication failure in Redis", crm)

    def succeeded(self, crm: str) -> None:
        now = time.monotonic()
        seen = crm in self._failed
        if not seen and now - self._cleared_at.get(crm, -1e18) < self.clear_seconds:
            return
        self._failed.pop(crm, None)
        self._cleared_at[crm] = now
        if self.redis is not None:
            try:
                self.redis.delete(self.KEY + crm)
            except RedisError:
                self._cleared_at.pop(crm, None)  # try again on the next success

    def problems(self, crms: Sequence[str]) -> dict[str, str]:
        """CRM -> the message of its last authentication failure, for those failing now."""
        if self.redis is None:
            return {crm: self._failed[crm] for crm in crms if crm in self._failed}
        try:
            values = self.redis.mget([self.KEY + crm for crm in crms]) if crms else []
        except RedisError:
            return {crm: self._failed[crm] for crm in crms if crm in self._failed}
        return {
            crm: value.decode() if isinstance(value, bytes) else str(value)
            for crm, value in zip(crms, values, strict=True)
            if value is not None
        }


class AuthWatched:
    """A connector whose calls report authentication failures and successes.

    Every public method goes through; an :class:`AuthError` is recorded (and raised
    on), a call that returns is a success. Generators (paged reads) count when
    iterated, since that is when they call the CRM.
    """

    def __init__(self, inner: Connector, crm: str, status: CrmAuthStatus) -> None:
        self._inner, self._crm, self._status = inner, crm, status

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name.startswith("_") or not callable(value):
            return value

        def watched(*args: Any, **kwargs: Any) -> Any:
            result = self._watch(lambda: value(*args, **kwargs))
            return self._pages(result) if inspect.isgenerator(result) else result

        return watched

    def _watch(self, call: Callable[[], Any]) -> Any:
        try:
            result = call()
        except AuthError as exc:
            self._status.failed(self._crm, exc)
            raise
        self._status.succeeded(self._crm)
        return result

    def _pages(self, pages: Iterator[Any]) -> Iterator[Any]:
        sentinel = object()
        while (page := self._watch(lambda: next(pages, sentinel))) is not sentinel:
            yield page
