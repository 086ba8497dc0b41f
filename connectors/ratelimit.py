"""A token bucket shared by every worker, so all of them together stay under a CRM's limit.

CRM API limits are per account, not per process: HubSpot private apps get 100
requests per rolling 10 seconds on Free/Starter and 190 on Professional and
Enterprise, and the search endpoints have their own 5 requests per second. Every
RQ worker draws on the same budget, so the bucket lives in Redis and is updated
by one Lua script (atomic, clocked by Redis ``TIME`` so workers on different
hosts agree). Without Redis (jobs in-process) a thread-safe local bucket does
the same job.

A bucket refills at ``limit / period`` tokens per second and holds at most
``burst`` tokens. In any window of ``period`` seconds it therefore lets through
at most ``burst + limit`` calls: the defaults keep that at or below the
documented ceiling (90 + 10 = 100 per 10 s; 4 + 1 = 5 per second for search).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

_EPSILON = 1e-9  # float refill arithmetic must not leave a wait too small to sleep through

_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local drain = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
if drain > 0 then
  tokens = math.min(tokens, -drain * rate)
end
local wait = 0
if want > 0 then
  if tokens >= want - 1e-9 then
    tokens = tokens - want
  else
    wait = (want - tokens) / rate
  end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity / rate + drain) * 1000) + 1000)
return tostring(wait)
"""


class TokenBucket:
    """``limit`` calls per ``period`` seconds, bursts of at most ``burst``.

    :meth:`acquire` waits (at most ``max_wait`` seconds) for a token and says
    whether it got one; the caller decides what "no token" means (a connector
    raises its own rate-limit error so the job is retried later).
    """

    def __init__(
        self,
        limit: int = 90,
        period: float = 10.0,
        *,
        burst: int = 10,
        redis: Any = None,
        key: str = "onstrategy:ratelimit",
        max_wait: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit <= 0 or period <= 0:
            raise ValueError(f"rate limit must be positive; got {limit} per {period}s")
        if burst <= 0:
            raise ValueError(f"burst must be positive; got {burst}")
        self.rate = limit / period
        self.capacity = float(burst)
        self.key = key
        self.max_wait = max_wait
        self._redis = redis
        self._script = redis.register_script(_TAKE) if redis is not None else None
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.capacity
        self._stamp = clock()

    def try_acquire(self, tokens: int = 1) -> float:
        """Take ``tokens`` now and return 0, or take nothing and return the seconds to wait."""
        return self._take(tokens, 0.0)

    def acquire(self, tokens: int = 1, max_wait: float | None = None) -> bool:
        """Wait for ``tokens``; False when they would not come within ``max_wait`` seconds."""
        budget = self.max_wait if max_wait is None else max_wait
        deadline = self._clock() + budget
        while True:
            wait = self.try_acquire(tokens)
            if wait <= 0:
                return True
            if self._clock() + wait > deadline:
                return False
            self._sleep(wait)

    def drain(self, seconds: float) -> None:
        """Empty the bucket for ``seconds``: the CRM said 429, so every worker pauses."""
        if seconds > 0:
            self._take(0, seconds)

    def _take(self, tokens: int, drain: float) -> float:
        if self._script is not None:
            args = [self.capacity, self.rate, tokens, drain]
            return float(self._script(keys=[self.key], args=args))
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._stamp)
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
            self._stamp = now
            if drain > 0:
                self._tokens = min(self._tokens, -drain * self.rate)
            if tokens <= 0:
                return 0.0
            if self._tokens >= tokens - _EPSILON:
                self._tokens -= tokens
                return 0.0
            return (tokens - self._tokens) / self.rate


#: A portal's documented budget: private apps on Free/Starter 100 calls per rolling
#: 10 s, Professional/Enterprise 190 (250 with the API limit increase); search 5 per second.
HUBSPOT_CALLS_PER_10S = 100
HUBSPOT_SEARCH_PER_SECOND = 5
BURST = 10


def hubspot_buckets(
    redis: Any = None,
    *,
    calls_per_10s: int = HUBSPOT_CALLS_PER_10S,
    search_per_second: int = HUBSPOT_SEARCH_PER_SECOND,
) -> dict:
    """The two HubSpot budgets of one portal: general calls (per 10 s) and search (per second).

    The bucket refills at ``calls_per_10s - burst`` per 10 s and holds ``burst``, so
    no 10-second window ever sees more than the documented ``calls_per_10s`` (90 + 10
    = 100 on Free/Starter, 180 + 10 = 190 on Professional/Enterprise); search
    likewise (4 + 1 = 5 per second). With ``redis`` the budget is one per portal
    for every worker on every host.
    """
    burst = min(BURST, max(1, calls_per_10s // 10))
    return {
        "general": TokenBucket(
            calls_per_10s - burst, 10.0, burst=burst, redis=redis, key="onstrategy:rl:hubspot"
        ),
        "search": TokenBucket(
            max(1, search_per_second - 1),
            1.0,
            burst=1,
            redis=redis,
            key="onstrategy:rl:hubspot:search",
        ),
    }
