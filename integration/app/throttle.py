"""Failed admin-token attempts per client address: after a few in a window, the address waits.

Both ways of presenting the admin token (the sign-in form and ``Authorization:
Bearer``) ask :meth:`SigninThrottle.standing` before comparing the token, so while
an address waits even the right token is refused: guessing gets no answer at all.
A wrong token counts one failure (:meth:`failed`); a right one clears the count.

The count is shared by every web worker on every host through Redis when the
runtime has one: one key per address, counted by a small script (``INCR``, and the
window's expiry set on the first failure) in one round trip. Without Redis (the
embedded default) it is this process's own. When Redis does not answer the count
falls back to this process's, with a warning: nobody is locked out because Redis is
down, and a guesser still meets a limit in each process.

The check and the count are two steps, so requests already being served when the
limit is reached may each compare once more: at most one per web worker.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis import RedisError

log = logging.getLogger(__name__)

#: Five wrong tokens from one address, then a wait until 15 minutes after the first:
#: a person who mistypes has room for several tries and waits at most a quarter of an
#: hour, while a guesser gets 20 tries an hour, nothing against a token of 32 random
#: bytes (``secrets.token_urlsafe(32)``) nor much against a weak one.
FAILURES_ALLOWED = 5
WINDOW_SECONDS = 15 * 60
#: Addresses the in-process count keeps before it drops those whose window is over.
LOCAL_PRUNE_AT = 10_000

KEY = "onstrategy:signin-failures:"

#: One failure, atomically: the window starts at the first failure and is not
#: extended by later ones. Returns the count and the milliseconds left.
_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return {n, redis.call('PTTL', KEYS[1])}
"""


@dataclass(frozen=True)
class Standing:
    """An address's failures in its current window, and the seconds left in that window."""

    failures: int
    seconds_left: float
    allowed: int

    @property
    def blocked(self) -> bool:
        return self.failures >= self.allowed and self.seconds_left > 0

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait (``Retry-After``), at least 1 while blocked."""
        return max(1, math.ceil(self.seconds_left)) if self.blocked else 0


class Counts(Protocol):
    """Failures per address with an expiry: where they are kept."""

    def get(self, address: str) -> tuple[int, float]: ...
    def add(self, address: str, window: float) -> tuple[int, float]: ...
    def clear(self, address: str) -> None: ...


class LocalCounts:
    """This process's counts: a dict under a lock, expiry read from ``clock``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}  # address -> (failures, ends at)

    def get(self, address: str) -> tuple[int, float]:
        with self._lock:
            return self._current(address, self.clock())

    def add(self, address: str, window: float) -> tuple[int, float]:
        with self._lock:
            now = self.clock()
            failures, left = self._current(address, now)
            ends = now + (left if failures else window)
            self._counts[address] = (failures + 1, ends)
            if len(self._counts) > LOCAL_PRUNE_AT:
                self._prune(now)
            return failures + 1, ends - now

    def clear(self, address: str) -> None:
        with self._lock:
            self._counts.pop(address, None)

    def _current(self, address: str, now: float) -> tuple[int, float]:
        failures, ends = self._counts.get(address, (0, now))
        return (failures, ends - now) if ends > now else (0, 0.0)

    def _prune(self, now: float) -> None:
        for address in [a for a, (_, ends) in self._counts.items() if ends <= now]:
            del self._counts[address]


class RedisCounts:
    """Counts every web worker and host shares: one key per address, expiring with its window."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._count = redis.register_script(_COUNT)

    def get(self, address: str) -> tuple[int, float]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(KEY + address)
        pipe.pttl(KEY + address)
        failures, left_ms = pipe.execute()
        if failures is None or left_ms <= 0:
            return 0, 0.0
        return int(failures), left_ms / 1000

    def add(self, address: str, window: float) -> tuple[int, float]:
        failures, left_ms = self._count(keys=[KEY + address], args=[math.ceil(window * 1000)])
        return int(failures), max(int(left_ms), 0) / 1000

    def clear(self, address: str) -> None:
        self.redis.delete(KEY + address)


class SigninThrottle:
    """Failed admin-token attempts per address; blocked after ``allowed`` in ``window`` seconds."""

    def __init__(
        self,
        redis: Any = None,
        *,
        allowed: int = FAILURES_ALLOWED,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if allowed < 1:
            raise ValueError(f"allowed must be at least 1; got {allowed}")
        if window <= 0:
            raise ValueError(f"window must be positive; got {window}")
        self.allowed, self.window = allowed, window
        self.shared: Counts | None = RedisCounts(redis) if redis is not None else None
        self.local = LocalCounts(clock)

    def standing(self, address: str) -> Standing:
        """Where ``address`` stands now; ask before comparing its token."""
        return self._standing(self._call("read", lambda counts: counts.get(address)))

    def failed(self, address: str) -> Standing:
        """Count one wrong token from ``address``; where it stands after."""
        return self._standing(self._call("count", lambda c: c.add(address, self.window)))

    def succeeded(self, address: str, before: Standing) -> None:
        """A right token: forget the address's failures (no write when there were none)."""
        if before.failures:
            self._call("clear", lambda counts: counts.clear(address))

    def _standing(self, seen: tuple[int, float]) -> Standing:
        return Standing(failures=seen[0], seconds_left=seen[1], allowed=self.allowed)

    def _call(self, what: str, call: Callable[[Counts], Any]) -> Any:
        """On Redis when there is one; on this process's counts when Redis does not answer."""
        if self.shared is not None:
            try:
                return call(self.shared)
            except RedisError as exc:
                log.warning(
                    "cannot %s failed sign-ins in Redis (%s); using this process's own count",
                    what,
                    exc,
                )
        return call(self.local)
