"""Wrong admin tokens per address: after five in fifteen minutes the address waits (429).

Through the real app, counted in a real Redis (shared by two apps, as by two web
workers) and in the process when there is no Redis or it does not answer.
"""

from __future__ import annotations

import logging
import re
import threading
import time

import pytest
from redis import Redis

from integration.app.factory import create_app
from integration.app.throttle import FAILURES_ALLOWED, WINDOW_SECONDS, LocalCounts, SigninThrottle
from integration.runtime import Runtime

TOKEN = "s3cret-admin-token"
HOME = {"REMOTE_ADDR": "198.51.100.7"}  # WSGI environ only: no network traffic is sent
ELSEWHERE = {"REMOTE_ADDR": "198.51.100.8"}


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["process", "redis"])
def counted_in(request, settings, sqlite_store, sandbox):
    """A runtime whose failed sign-ins are counted in the process, or in the test Redis."""
    redis = request.getfixturevalue("redis_conn") if request.param == "redis" else None
    return Runtime(
        settings.replace(admin_token=TOKEN),
        store=sqlite_store,
        redis=redis,
        connectors={"sandbox": sandbox},
    )


def _app(runtime, **throttle):
    made = SigninThrottle(runtime.redis, **throttle) if throttle else None
    return create_app(runtime=runtime, signin_throttle=made)


def _sign_in(client, token, environ=HOME):
    page = client.get("/signin", environ_base=environ).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"csrf_token": csrf, "token": token, "next": "/dashboard"}
    return client.post("/signin", data=form, environ_base=environ)


def _wrong(client, times, environ=HOME):
    for _ in range(times):
        assert _sign_in(client, "guess", environ).status_code == 401


def _bearer(client, token, environ=HOME):
    headers = {"Authorization": f"Bearer {token}"}
    return client.get("/api/rules", headers=headers, environ_base=environ)


def test_the_sixth_wrong_token_waits_and_so_does_the_right_one(counted_in, caplog):
    client = _app(counted_in).test_client()
    _wrong(client, FAILURES_ALLOWED)
    with caplog.at_level(logging.WARNING, logger="integration.app.auth"):
        sixth = _sign_in(client, "guess")
    assert sixth.status_code == 429
    assert WINDOW_SECONDS - 60 < int(sixth.headers["Retry-After"]) <= WINDOW_SECONDS
    assert "Try again in 15 minutes" in sixth.get_data(as_text=True)
    assert any("5 wrong admin tokens" in r.getMessage() for r in caplog.records)

    right = _sign_in(client, TOKEN)
    assert right.status_code == 429 and "Retry-After" in right.headers
    assert client.get("/dashboard", environ_base=HOME).status_code == 302  # not signed in
    assert _sign_in(client, TOKEN, ELSEWHERE).status_code == 302  # another address may
    scraped = client.get("/metrics").get_data(as_text=True)
    assert 'onstrategy_signin_refused_total{via="form"} 2.0' in scraped


def test_a_right_token_before_the_limit_clears_the_count(counted_in):
    app = _app(counted_in)
    _wrong(app.test_client(), FAILURES_ALLOWED - 1)
    assert _sign_in(app.test_client(), TOKEN).status_code == 302
    client = app.test_client()  # another browser at the same address
    _wrong(client, FAILURES_ALLOWED)  # five more, none of them refused for the earlier four
    assert _sign_in(client, "guess").status_code == 429


def test_bearer_tokens_count_against_the_same_address(counted_in):
    client = _app(counted_in).test_client()
    _wrong(client, 2)
    assert _bearer(client, TOKEN).status_code == 200  # clears the two
    for _ in range(FAILURES_ALLOWED - 1):
        assert _bearer(client, "guess").status_code == 401
    _wrong(client, 1)  # the form and the header share one count
    refused = _bearer(client, TOKEN)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.get_json()["error"] == "too_many_attempts"
    assert _sign_in(client, TOKEN).status_code == 429
    scraped = client.get("/metrics").get_data(as_text=True)
    assert 'onstrategy_signin_refused_total{via="bearer"} 1.0' in scraped


def test_every_web_worker_shares_the_count_through_redis(settings, sqlite_store, redis_conn):
    def worker():
        runtime = Runtime(settings.replace(admin_token=TOKEN), store=sqlite_store, redis=redis_conn)
        return create_app(runtime=runtime).test_client()

    first, second = worker(), worker()
    _wrong(first, 3)
    _wrong(second, FAILURES_ALLOWED - 3)
    assert _sign_in(first, "guess").status_code == 429
    assert _sign_in(second, TOKEN).status_code == 429


def test_the_wait_ends_with_the_window_in_the_process(settings, sqlite_store, sandbox):
    runtime = Runtime(
        settings.replace(admin_token=TOKEN), store=sqlite_store, connectors={"sandbox": sandbox}
    )
    clock = Clock()
    client = _app(runtime, clock=clock).test_client()
    _wrong(client, 1)
    clock.now += WINDOW_SECONDS / 2
    _wrong(client, FAILURES_ALLOWED - 1)  # the window runs from the first failure
    assert _sign_in(client, "guess").headers["Retry-After"] == str(WINDOW_SECONDS // 2)
    clock.now += WINDOW_SECONDS / 2 - 1
    assert _sign_in(client, TOKEN).headers["Retry-After"] == "1"
    clock.now += 1
    assert _sign_in(client, TOKEN).status_code == 302


def test_the_wait_ends_with_the_window_in_redis(settings, sqlite_store, redis_conn):
    runtime = Runtime(settings.replace(admin_token=TOKEN), store=sqlite_store, redis=redis_conn)
    client = _app(runtime, window=1.0).test_client()
    _wrong(client, FAILURES_ALLOWED)
    assert _sign_in(client, TOKEN).status_code == 429
    deadline = time.monotonic() + 5
    while (answer := _sign_in(client, TOKEN)).status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert answer.status_code == 302
    assert redis_conn.keys("onstrategy:signin-failures:*") == []  # cleared by the success


def test_with_redis_down_the_process_counts_and_warns(settings, sqlite_store, caplog):
    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    runtime = Runtime(settings.replace(admin_token=TOKEN), store=sqlite_store, redis=down)
    client = _app(runtime).test_client()
    with caplog.at_level(logging.WARNING, logger="integration.app.throttle"):
        _wrong(client, FAILURES_ALLOWED)
    assert any("using this process's own count" in r.getMessage() for r in caplog.records)
    assert _sign_in(client, TOKEN).status_code == 429
    assert _sign_in(client, TOKEN, ELSEWHERE).status_code == 302  # nobody else locked out


def test_the_process_count_is_safe_across_threads():
    counts = LocalCounts()
    threads = [
        threading.Thread(target=lambda: [counts.add("a", 60) for _ in range(100)]) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert counts.get("a")[0] == 800


@pytest.mark.parametrize("allowed, window", [(0, 60), (5, 0)])
def test_a_bad_limit_is_refused_by_name(allowed, window):
    with pytest.raises(ValueError, match="allowed" if not allowed else "window"):
        SigninThrottle(allowed=allowed, window=window)


def test_behind_a_trusted_proxy_each_client_is_counted_by_its_own_address(
    counted_in, sqlite_store, sandbox
):
    """ONSTRATEGY_PROXY_HOPS=1: the address nginx appended to X-Forwarded-For is the client."""
    runtime = Runtime(
        counted_in.settings.replace(proxy_hops=1),
        store=sqlite_store,
        redis=counted_in.redis,
        connectors={"sandbox": sandbox},
    )
    client = create_app(runtime=runtime).test_client()
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    guesser = {**proxy, "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    other = {**proxy, "HTTP_X_FORWARDED_FOR": "203.0.113.10"}
    _wrong(client, FAILURES_ALLOWED, guesser)
    assert _sign_in(client, "guess", guesser).status_code == 429
    assert _sign_in(client, TOKEN, other).status_code == 302  # another client signs in


def test_without_trusted_proxies_a_forged_forwarding_header_escapes_nothing(counted_in):
    client = _app(counted_in).test_client()
    for n in range(FAILURES_ALLOWED):
        forged = {**HOME, "HTTP_X_FORWARDED_FOR": f"203.0.113.{n}"}
        assert _sign_in(client, "guess", forged).status_code == 401
    forged = {**HOME, "HTTP_X_FORWARDED_FOR": "203.0.113.99"}
    assert _sign_in(client, TOKEN, forged).status_code == 429
