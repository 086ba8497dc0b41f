"""The fault suite: real worker processes, Redis and the store, with faults injected.

Each test drives real ``onstrategy worker`` processes and asserts the end state
the product promises: every acknowledged event applied, at most one live task
per deal and rule, never more open tasks than the cap per rep, slot counters
equal to their rows, an audit row for every CRM write. Run alone with
``pytest -m faults``; every wait is bounded.
"""

from __future__ import annotations

import random
import sqlite3
import time

import pytest
from sqlalchemy.engine import make_url

from faults_world import FaultWorld
from integration.jobs import handlers as jobs
from integration.jobs.intake import RedisIntake
from tcp_proxy import TcpProxy

pytestmark = pytest.mark.faults


@pytest.fixture
def pg_world(tmp_path, postgres_url, redis_url):
    world = FaultWorld(tmp_path, postgres_url, redis_url, reps=3, deals=5)
    yield world
    world.stop_workers()
    world.store.engine.dispose()


def _burst(world: FaultWorld, rnd: random.Random, round_no: int, deals: list[str]) -> None:
    """Events for every deal, redelivered and interleaved, plus overlapping jobs that
    stand for events arriving while earlier jobs run."""
    intake = RedisIntake(world.redis)
    events = [world.event(opp, f"r{round_no}-{opp}") for opp in deals]
    rnd.shuffle(events)
    for start in range(0, len(events), 4):
        chunk = events[start : start + 4]
        intake.submit(chunk + rnd.sample(events, 2))  # with redeliveries
    for n in range(6):
        ids = rnd.sample(deals, 5)
        keys = {opp: f"r{round_no}-x{n}-{opp}" for opp in ids}
        world.queue.enqueue(jobs.evaluate_opportunities, "sandbox", ids, keys)


def _complete_one_task_per_rep(world: FaultWorld, deadline: float) -> list[str]:
    """A manager completes one open task of each rep, mid-burst."""
    done: list[str] = []
    while time.monotonic() < deadline and len(done) < len(world.reps):
        for task in world.open_crm_tasks():
            rep = world.owner_of(task["opportunity_id"])
            if rep not in {world.owner_of(d) for d in done}:
                world.sandbox.complete_task(task["id"])
                done.append(task["opportunity_id"])
        world.watch()
        time.sleep(0.05)
    return done


def test_two_workers_with_duplicate_and_interleaved_events_on_postgresql(pg_world):
    world = pg_world
    rnd = random.Random(13)
    deals = [d["id"] for d in world.deals]
    world.start_workers(2)
    for round_no in range(3):
        # Each round one deal of each rep stops qualifying and an earlier one qualifies again.
        for rep in world.reps:
            world.sandbox.set_opportunity(f"OPP-{rep}-{round_no:02d}", amount=5_000)
            if round_no:
                world.sandbox.set_opportunity(f"OPP-{rep}-{round_no - 1:02d}", amount=400_000)
        _burst(world, rnd, round_no, deals)
        completed = _complete_one_task_per_rep(world, time.monotonic() + 20)
        assert completed, "no task was ever opened"
        _burst(world, rnd, round_no + 100, deals)  # after the managers' work
        world.wait_idle(timeout=60)
        world.check_promises()
    world.check_fields({opp: "Off Strategy" for opp in deals})
    assert world.failures() == []


@pytest.fixture
def sqlite_world(tmp_path, redis_url):
    world = FaultWorld(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", redis_url, reps=2, deals=4)
    yield world
    world.stop_workers()
    world.store.engine.dispose()


def test_worker_killed_mid_job_loses_no_acknowledged_work(sqlite_world):
    """SIGKILL while a job writes the CRM: RQ finds the job abandoned and runs it again."""
    world = sqlite_world
    deals = [d["id"] for d in world.deals]
    crm_lock = sqlite3.connect(world.sandbox.path, timeout=1, isolation_level=None)
    crm_lock.execute("BEGIN IMMEDIATE")  # the CRM hangs on writes: the job stays started
    try:
        RedisIntake(world.redis).submit([world.event(opp, f"k-{opp}") for opp in deals])
        world.start_workers(1)
        deadline = time.monotonic() + 60
        while not world.started("evaluate_opportunities") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert world.started("evaluate_opportunities"), "the job never started"
        time.sleep(0.5)
        world.kill_worker(world.workers[0])
    finally:
        crm_lock.execute("ROLLBACK")
        crm_lock.close()
    world.start_workers(1)
    world.wait_idle(timeout=200)
    world.check_promises()
    world.check_fields({opp: "Off Strategy" for opp in deals})
    assert world.failures() == []


@pytest.fixture
def proxied_world(tmp_path, postgres_url, redis_url):
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    world = FaultWorld(tmp_path, proxied, redis_url, reps=2, deals=6)
    world.proxy = proxy
    yield world
    world.stop_workers()
    world.store.engine.dispose()
    proxy.close()


def test_postgresql_connections_dropped_mid_processing_lose_nothing(proxied_world):
    """The store goes away for a few seconds: jobs are retried like a CRM 5xx."""
    world = proxied_world
    deals = [d["id"] for d in world.deals]
    intake = RedisIntake(world.redis)
    world.start_workers(1)
    intake.submit([world.event(opp, f"a-{opp}") for opp in deals[:6]])
    world.wait_idle(timeout=30)
    world.proxy.cut(6)  # pooled connections dropped, new ones refused for 6 s
    intake.submit([world.event(opp, f"b-{opp}") for opp in deals[6:]])
    world.wait_idle(timeout=90)
    world.check_promises()
    world.check_fields({opp: "Off Strategy" for opp in deals})
    assert world.failures() == []
