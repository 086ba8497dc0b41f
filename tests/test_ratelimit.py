"""The shared token bucket: in-process and through the real test Redis."""

from __future__ import annotations

import pytest

from connectors.ratelimit import TokenBucket, hubspot_buckets


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_burst_then_refill_in_process() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 1.0, burst=3, clock=clock, sleep=clock.sleep)
    assert [bucket.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_acquire() == pytest.approx(0.1)
    clock.now += 0.1
    assert bucket.try_acquire() == 0.0


def test_acquire_waits_within_bound_else_false() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1, 1.0, burst=1, clock=clock, sleep=clock.sleep, max_wait=0.5)
    assert bucket.acquire()
    assert not bucket.acquire()  # the next token is 1 s away, over the 0.5 s bound
    assert bucket.acquire(max_wait=2.0) and clock.sleeps == [pytest.approx(1.0)]


def test_window_never_exceeds_documented_limit() -> None:
    """burst + limit per period: 10 + 90 calls in any 10 s, HubSpot's lowest tier is 100."""
    clock = FakeClock()
    bucket = TokenBucket(90, 10.0, burst=10, clock=clock, sleep=clock.sleep)
    start, taken = clock.now, 0
    while clock.now - start < 10.0:
        assert bucket.acquire()
        taken += 1
    assert taken <= 100


def test_drain_pauses_the_bucket() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 1.0, burst=10, clock=clock, sleep=clock.sleep)
    bucket.drain(2.0)
    assert bucket.try_acquire() == pytest.approx(2.1)


def test_invalid_limits_are_named() -> None:
    with pytest.raises(ValueError, match="got 0 per 10"):
        TokenBucket(0, 10)


def test_redis_bucket_is_shared(redis_conn: object) -> None:
    one = TokenBucket(10, 1.0, burst=3, redis=redis_conn, key="t:shared")
    two = TokenBucket(10, 1.0, burst=3, redis=redis_conn, key="t:shared")
    taken = [b.try_acquire() == 0.0 for b in (one, two, one, two)]
    assert taken == [True, True, True, False]


def test_redis_drain_reaches_every_worker(redis_conn: object) -> None:
    one = TokenBucket(10, 1.0, burst=5, redis=redis_conn, key="t:drain")
    two = TokenBucket(10, 1.0, burst=5, redis=redis_conn, key="t:drain")
    one.drain(3.0)
    assert two.try_acquire() == pytest.approx(3.1, abs=0.05)


def test_hubspot_buckets_defaults(redis_conn: object) -> None:
    buckets = hubspot_buckets(redis_conn)
    assert buckets["general"].rate == pytest.approx(9.0)
    assert buckets["search"].rate == pytest.approx(4.0)
    assert buckets["general"].key != buckets["search"].key


def test_hubspot_budget_of_a_professional_portal_is_shared_by_every_worker(
    redis_conn: object,
) -> None:
    workers = [hubspot_buckets(redis_conn, calls_per_10s=190)["general"] for _ in range(3)]
    assert workers[0].rate == pytest.approx(18.0)  # 180 per 10 s refill + a burst of 10
    taken = 0
    while workers[taken % 3].try_acquire() == 0:  # the burst, whichever worker asks
        taken += 1
    assert taken == 10
