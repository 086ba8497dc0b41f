"""The webhook intake's promises on real Redis: durable before 2xx, redeliveries and
bursts absorbed, deliveries batched into jobs, and nothing lost when a drain or
its job is lost.

A webhook only appends to the inbox; a drain job (run here by a real RQ worker)
plans the evaluation jobs. Each test drives the real intake, drain and worker
against the file-backed sandbox CRM.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from redis import Redis

from connectors.sandbox import SandboxConnector
from integration.domain.crms import DEFAULT_JOB_SIZE, job_size
from integration.domain.events import ChangeEvent, QueueUnavailable
from integration.jobs.handlers import evaluate_opportunities
from integration.jobs.inbox import EventsByKind, drain, drain_inbox, gather
from integration.jobs.intake import RedisIntake, drain_waiting
from integration.jobs.queues import DRAIN_ARMED_KEY, INBOX_KEY, make_queue
from integration.jobs.worker import Worker
from integration.runtime import Runtime
from integration.settings import Settings
from integration.store.database import Store

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def world(bind, tmp_path, redis_conn):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    settings = Settings.from_env(
        {
            "ONSTRATEGY_RULES_DIR": str(rules),
            "ONSTRATEGY_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
            "ONSTRATEGY_CRM": "sandbox",
        }
    )
    sandbox = SandboxConnector(str(tmp_path / "sandbox.db"))
    sandbox.add_accounts([{"id": "ACC-1", "name": "Shopright", "industry": "Retail"}])
    sandbox.add_opportunities(
        [
            {"id": f"OPP-{i:03d}", "name": f"Deal {i}", "account_id": "ACC-1", "amount": 1000}
            for i in range(150)
        ]
    )
    store = Store(settings.database_url)
    store.migrate()
    runtime = Runtime(settings, store=store, redis=redis_conn, connectors={"sandbox": sandbox})
    bind(runtime)
    yield runtime, sandbox


def _event(opp: str, key: str) -> ChangeEvent:
    return ChangeEvent(crm="sandbox", kind="opportunity", object_id=opp, key=key)


def _work(runtime) -> None:
    Worker(runtime).work(burst=True)


def _evaluation_jobs(runtime) -> list:
    queue = make_queue(runtime.redis)
    return [j for j in queue.jobs if j.func_name.endswith("evaluate_opportunities")]


def test_events_are_in_the_inbox_and_one_drain_is_queued_when_submit_returns(world):
    runtime, sandbox = world
    intake = RedisIntake(runtime.redis)
    assert intake.submit([_event("OPP-000", "a")]) == 1
    assert intake.submit([_event("OPP-001", "b")]) == 1
    assert runtime.redis.llen(INBOX_KEY) == 2
    [drain_job] = make_queue(runtime.redis).jobs  # the second delivery found one armed
    assert drain_job.func_name.endswith("drain_inbox")
    _work(runtime)
    assert runtime.redis.llen(INBOX_KEY) == 0
    assert sandbox.opportunity_fields("OPP-001")["fit"] == "Off Strategy"


def test_redelivery_before_the_drain_is_one_evaluation(world):
    runtime, sandbox = world
    intake = RedisIntake(runtime.redis)
    intake.submit([_event("OPP-000", "same")])
    intake.submit([_event("OPP-000", "same")])  # HubSpot retried: the drain has not run
    _work(runtime)
    assert sandbox.api_calls["read_opportunities"] == 1
    assert intake.submit([_event("OPP-000", "same")]) == 0  # seen: nothing appended
    assert runtime.redis.llen(INBOX_KEY) == 0
    assert make_queue(runtime.redis).count == 0


def test_single_event_deliveries_share_full_batch_jobs(world):
    runtime, sandbox = world
    intake = RedisIntake(runtime.redis)
    for i in range(150):
        intake.submit([_event(f"OPP-{i:03d}", f"k{i}")])
    drain(runtime.redis, lambda: None)
    assert sorted(len(job.args[1]) for job in _evaluation_jobs(runtime)) == [50, DEFAULT_JOB_SIZE]
    _work(runtime)
    assert sandbox.api_calls["read_opportunities"] == 2


def test_each_crm_gets_jobs_of_its_own_size(world):
    """HubSpot deals go 500 to a job (their association reads take 1,000 ids), Salesforce
    opportunities 200 (one sObject Collections update), so calls per event stay low."""
    runtime, _ = world
    intake = RedisIntake(runtime.redis)
    events = [ChangeEvent("hubspot", "opportunity", str(i), f"h{i}") for i in range(1200)]
    events += [ChangeEvent("salesforce", "opportunity", f"006{i:015}", f"s{i}") for i in range(450)]
    for start in range(0, len(events), 100):  # deliveries of 100 events, as HubSpot sends them
        intake.submit(events[start : start + 100])
    drain(runtime.redis, lambda: None)
    sizes: dict[str, list[int]] = {}
    for job in _evaluation_jobs(runtime):
        sizes.setdefault(job.args[0], []).append(len(job.args[1]))
    assert (job_size("hubspot"), job_size("salesforce")) == (500, 200)
    assert sorted(sizes["hubspot"]) == [200, 500, 500]
    assert sorted(sizes["salesforce"]) == [50, 200, 200]


def _hubspot_runtime(runtime, bind, wait_ms: int) -> Runtime:
    """The world's runtime as a HubSpot portal's (drains do not call the CRM)."""
    settings = runtime.settings.replace(crms=("hubspot",), batch_wait_ms=wait_ms)
    hubspot = Runtime(settings, store=runtime.store, redis=runtime.redis, connectors={})
    bind(hubspot)
    return hubspot


def _deliveries(intake: RedisIntake, first: int, count: int, pause: float = 0.0) -> None:
    for n in range(first, first + count):
        time.sleep(pause)
        intake.submit(
            [
                ChangeEvent("hubspot", "opportunity", str(i), f"h{i}")
                for i in range(n * 100, n * 100 + 100)
            ]
        )


def _dequeue_drains(runtime) -> None:
    """Take the queued drain off the queue, as the worker that runs it does."""
    queue = make_queue(runtime.redis)
    for job in queue.jobs:
        if job.func_name.endswith("drain_inbox"):
            queue.remove(job)


def test_a_drain_waits_for_the_rest_of_a_burst_to_fill_a_job(world, bind):
    """A free worker drains at the first delivery; waiting briefly lets the next four
    share its job (one job of 500: 21 HubSpot calls, where five jobs of 100 take 35)."""
    runtime, _ = world
    _hubspot_runtime(runtime, bind, wait_ms=3000)
    intake = RedisIntake(runtime.redis)
    _deliveries(intake, 0, 1)
    _dequeue_drains(runtime)
    burst = threading.Thread(target=_deliveries, args=(intake, 1, 4, 0.05))
    burst.start()
    started = time.monotonic()
    drain_inbox()
    burst.join()
    assert [len(job.args[1]) for job in _evaluation_jobs(runtime)] == [500]
    assert time.monotonic() - started < 3.0  # it stopped waiting once a job was full


def test_a_drain_never_waits_while_other_work_is_queued(world, bind):
    runtime, _ = world
    _hubspot_runtime(runtime, bind, wait_ms=5000)
    make_queue(runtime.redis).enqueue(evaluate_opportunities, "hubspot", ["1"], {})
    intake = RedisIntake(runtime.redis)
    _deliveries(intake, 1, 1)
    _dequeue_drains(runtime)
    started = time.monotonic()
    drain_inbox()
    assert time.monotonic() - started < 2.0
    assert sorted(len(job.args[1]) for job in _evaluation_jobs(runtime)) == [1, 100]


def test_sandbox_drains_never_wait(world):
    runtime, _ = world
    assert gather(runtime.redis, wait=5.0, full=0) == 0.0
    assert runtime.settings.crms == ("sandbox",) and runtime.settings.batch_wait_ms == 250
    intake = RedisIntake(runtime.redis)
    intake.submit([_event("OPP-000", "a")])
    _dequeue_drains(runtime)
    started = time.monotonic()
    drain_inbox()
    assert time.monotonic() - started < 1.0


def test_a_drain_that_loses_its_lock_leaves_the_entries_and_the_next_plans_nothing_twice(world):
    runtime, _ = world
    intake = RedisIntake(runtime.redis)
    intake.submit([_event("OPP-000", "a"), _event("OPP-001", "b")])

    def lost() -> None:
        raise RuntimeError("lock lost")

    with pytest.raises(RuntimeError):
        drain(runtime.redis, lost)
    assert runtime.redis.llen(INBOX_KEY) == 2  # not removed: another drain may own them
    assert len(_evaluation_jobs(runtime)) == 1
    assert drain(runtime.redis, lambda: None) == {"read": 2, "new": 0}
    assert runtime.redis.llen(INBOX_KEY) == 0
    assert len(_evaluation_jobs(runtime)) == 1


def test_a_lost_drain_job_is_queued_again_by_a_starting_worker(world):
    runtime, sandbox = world
    RedisIntake(runtime.redis).submit([_event("OPP-002", "a")])
    make_queue(runtime.redis).empty()  # the drain job is gone (its worker died)
    runtime.redis.delete(DRAIN_ARMED_KEY)  # and its arm expired
    assert drain_waiting(runtime.redis) is True
    _work(runtime)
    assert sandbox.opportunity_fields("OPP-002")["fit"] == "Off Strategy"
    assert drain_waiting(runtime.redis) is False


def test_an_entry_the_drain_cannot_read_does_not_block_the_others(world):
    runtime, sandbox = world
    runtime.redis.rpush(INBOX_KEY, b"not an event")
    RedisIntake(runtime.redis).submit([_event("OPP-003", "a")])
    _work(runtime)
    assert runtime.redis.llen(INBOX_KEY) == 0
    assert sandbox.opportunity_fields("OPP-003")["fit"] == "Off Strategy"


def test_redis_down_is_queue_unavailable_and_nothing_is_acknowledged():
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    with pytest.raises(QueueUnavailable):
        RedisIntake(dead).submit([_event("OPP-000", "x")])


def test_for_a_record_changed_and_deleted_in_one_drain_the_later_event_wins():
    def planned(*kinds: str) -> dict[str, dict[str, str]]:
        events = [ChangeEvent("hubspot", k, "42", f"e{n}") for n, k in enumerate(kinds)]
        return EventsByKind(events).by_crm["hubspot"]

    gone = planned("opportunity", "deleted")
    assert (gone["opportunity"], gone["deleted"]) == ({}, {"42": "e1"})
    restored = planned("opportunity", "deleted", "opportunity")  # deal.restore
    assert (restored["opportunity"], restored["deleted"]) == ({"42": "e2"}, {})
