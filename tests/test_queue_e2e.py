"""Events through real Redis and RQ workers into the sandbox CRM.

Covers what the webhooks rely on: work is durably queued before ``submit``
returns, redeliveries and bursts are coalesced, Redis going away is an error the
webhook turns into 503, transient CRM failures are retried and permanent ones
land in RQ's failed registry, and two real worker processes never exceed a
rep's coaching cap.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from redis import Redis

from connectors.base import RejectedError, TransientError
from connectors.sandbox import SandboxConnector
from integration.domain.events import ChangeEvent, QueueUnavailable
from integration.jobs import handlers as jobs
from integration.jobs.inbox import drain
from integration.jobs.intake import RedisIntake
from integration.jobs.queues import make_queue
from integration.jobs.worker import Worker
from integration.runtime import Runtime
from integration.settings import Settings
from integration.store.database import Store

ROOT = Path(__file__).resolve().parent.parent


def _owner_rows():
    return [
        {
            "id": "U-1",
            "name": "Morgan Lee",
            "email": "m@example.com",
            "manager_id": "U-9",
            "team": "East",
        },
        {"id": "U-9", "name": "Pat Manager", "email": "p@example.com", "team": "East"},
    ]


def _big_off_strategy(n: int) -> list[dict]:
    """Deals of one rep that each ask for coaching (large, late, off strategy)."""
    return [
        {
            "id": f"OPP-{i:03d}",
            "name": f"Retail deal {i}",
            "account_id": "ACC-R",
            "owner_id": "U-1",
            "amount": 150000 + i * 1000,
            "stage": "Negotiation",
            "probability": 80,
            "close_date": "2027-02-01",
            "products": ["Support Renewal"],
        }
        for i in range(n)
    ]


@pytest.fixture
def world(bind, tmp_path, redis_conn, redis_url):
    """A runtime on real Redis, a SQLite store and a file-backed sandbox CRM."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    db = tmp_path / "store.db"
    settings = Settings.from_env(
        {
            "ONSTRATEGY_RULES_DIR": str(rules),
            "ONSTRATEGY_DATABASE_URL": f"sqlite:///{db}",
            "ONSTRATEGY_REDIS_URL": redis_url,
            "ONSTRATEGY_CRM": "sandbox",
        }
    )
    sandbox = SandboxConnector(str(tmp_path / "onstrategy-sandbox.db"))
    sandbox.add_owners(_owner_rows())
    sandbox.add_accounts(
        [{"id": "ACC-R", "name": "Shopright", "industry": "Retail", "employees": 300}]
    )
    sandbox.add_opportunities(_big_off_strategy(6))
    store = Store(settings.database_url)
    store.migrate()
    runtime = Runtime(settings, store=store, redis=redis_conn, connectors={"sandbox": sandbox})
    bind(runtime)
    yield runtime, sandbox, settings


def _event(opp: str, key: str, kind: str = "opportunity") -> ChangeEvent:
    return ChangeEvent(crm="sandbox", kind=kind, object_id=opp, key=key)


def _work(runtime) -> None:
    Worker(runtime).work(burst=True)


def test_submitted_work_is_in_redis_before_submit_returns(world):
    runtime, sandbox, _ = world
    intake = RedisIntake(runtime.redis)
    assert intake.submit([_event("OPP-000", "k1")]) == 1
    assert make_queue(runtime.redis).count == 1
    assert sandbox.opportunity_fields("OPP-000")["fit"] is None  # nothing done yet
    _work(runtime)
    assert sandbox.opportunity_fields("OPP-000")["fit"] == "Off Strategy"


def test_redelivery_creates_nothing_new(world):
    runtime, sandbox, _ = world
    intake = RedisIntake(runtime.redis)
    intake.submit([_event("OPP-000", "k1")])
    _work(runtime)
    writes = sandbox.api_calls["update_opportunities"]
    tasks = len(sandbox.tasks())
    assert intake.submit([_event("OPP-000", "k1")]) == 0
    assert make_queue(runtime.redis).count == 0
    _work(runtime)
    assert sandbox.api_calls["update_opportunities"] == writes
    assert len(sandbox.tasks()) == tasks


def test_burst_for_one_deal_is_one_evaluation(world):
    runtime, sandbox, _ = world
    intake = RedisIntake(runtime.redis)
    for n in range(5):
        intake.submit([_event("OPP-001", f"burst-{n}")])
    assert make_queue(runtime.redis).count == 1
    _work(runtime)
    assert sandbox.api_calls["read_opportunities"] == 1


class _ChangedDuringRead(SandboxConnector):
    """The sandbox CRM where, the first time a deal is read, a user edits it and the
    CRM sends a new event: the edit lands just after the job's read, while it runs."""

    def __init__(self, path: str, during_read: Callable[[], None]) -> None:
        super().__init__(path)
        self.during_read: Callable[[], None] | None = during_read

    def read_opportunities(self, ids):
        records = super().read_opportunities(ids)
        if self.during_read is not None:
            hook, self.during_read = self.during_read, None
            hook()
        return records


def test_event_arriving_after_the_job_started_is_not_lost(world):
    runtime, sandbox, _ = world
    intake = RedisIntake(runtime.redis)

    def approve_and_notify() -> None:
        sandbox.set_opportunity(
            "OPP-002", exception_reason="Champion is moving to a target account"
        )
        intake.submit([_event("OPP-002", "b")])
        # Another worker drains the inbox while this job is still running.
        assert drain(runtime.redis, lambda: None) == {"read": 1, "new": 1}

    changing = _ChangedDuringRead(sandbox.path, approve_and_notify)
    runtime._connectors["sandbox"] = changing
    intake.submit([_event("OPP-002", "a")])
    _work(runtime)  # the first job read the old deal; the event drained meanwhile queued a second
    assert sandbox.opportunity_fields("OPP-002")["fit"] == "Off Strategy (Approved)"
    assert changing.api_calls["read_opportunities"] == 2


def test_redis_down_is_queue_unavailable(world):
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    with pytest.raises(QueueUnavailable):
        RedisIntake(dead).submit([_event("OPP-000", "x")])


class _Flaky(SandboxConnector):
    """The sandbox CRM failing its first reads: a stand-in at the CRM boundary."""

    def __init__(self, path: str, error: Exception, times: int) -> None:
        super().__init__(path)
        self.error, self.times = error, times

    def read_opportunities(self, ids):
        if self.times:
            self.times -= 1
            raise self.error
        return super().read_opportunities(ids)


def test_transient_failure_is_scheduled_for_retry(world, tmp_path):
    runtime, sandbox, _ = world
    flaky = _Flaky(sandbox.path, TransientError("sandbox", 503, body="busy"), times=1)
    runtime._connectors["sandbox"] = flaky
    RedisIntake(runtime.redis).submit([_event("OPP-003", "t1")])
    _work(runtime)
    queue = make_queue(runtime.redis)
    assert queue.scheduled_job_registry.count == 1  # the retry, with backoff
    assert queue.failed_job_registry.count == 0
    jobs.evaluate_opportunities("sandbox", ["OPP-003"], {"OPP-003": "t1"}, attempt=2)
    assert sandbox.opportunity_fields("OPP-003")["fit"] == "Off Strategy"


def test_permanent_failure_lands_in_failed_registry_and_can_be_requeued(world):
    runtime, sandbox, _ = world
    runtime._connectors["sandbox"] = _Flaky(
        sandbox.path, RejectedError("sandbox", 400, body="INVALID_FIELD"), times=1
    )
    RedisIntake(runtime.redis).submit([_event("OPP-004", "p1")])
    _work(runtime)
    from integration.jobs.worker import failed_jobs, requeue

    failed = failed_jobs(runtime)
    assert len(failed) == 1 and "INVALID_FIELD" in failed[0][2]
    assert requeue(runtime, [], everything=True) == 1
    _work(runtime)
    assert failed_jobs(runtime) == []
    assert sandbox.opportunity_fields("OPP-004")["fit"] == "Off Strategy"


def test_two_worker_processes_never_exceed_the_cap(world):
    runtime, sandbox, settings = world
    queue = make_queue(runtime.redis)
    for i in range(6):  # six jobs, one deal each, all the same rep, run concurrently
        queue.enqueue(jobs.evaluate_opportunities, "sandbox", [f"OPP-{i:03d}"], {})
    assert queue.count == 6
    env = {
        **os.environ,
        "ONSTRATEGY_RULES_DIR": settings.rules_dir,
        "ONSTRATEGY_DATABASE_URL": settings.database_url,
        "ONSTRATEGY_REDIS_URL": settings.redis_url,
        "ONSTRATEGY_CRM": "sandbox",
    }
    command = [
        sys.executable,
        "-c",
        "from integration.cli.commands import main; main()",
        "worker",
        "--burst",
    ]
    workers = [subprocess.Popen(command, env=env, cwd=ROOT) for _ in range(2)]
    for worker in workers:
        assert worker.wait(timeout=120) == 0
    open_tasks = [t for t in sandbox.tasks() if t["status"] == "Open"]
    cap = runtime.rulebook().ruleset.max_open_per_rep
    assert len(open_tasks) == cap
    assert runtime.store.tasks.open_count("sandbox", "U-1") == cap
    queued = runtime.store.tasks.for_reps("sandbox", ["U-1"], "queued")
    bound = runtime.rulebook().ruleset.queue_per_rep
    assert len(queued) == min(6 - cap, bound)  # the most important others wait their turn
    assert runtime.store.tasks.mismatched() == []


def test_transient_failure_that_outlasts_every_retry_lands_in_failed_registry(world):
    runtime, sandbox, _ = world
    busy = TransientError("sandbox", 503, body="still busy")
    runtime._connectors["sandbox"] = _Flaky(sandbox.path, busy, times=1)
    last = len(jobs.BACKOFF) + 1  # the attempt after the last scheduled retry
    make_queue(runtime.redis).enqueue(
        jobs.evaluate_opportunities, "sandbox", ["OPP-005"], {}, attempt=last
    )
    _work(runtime)
    queue = make_queue(runtime.redis)
    assert queue.scheduled_job_registry.count == 0
    from integration.jobs.worker import failed_jobs

    [(_, name, reason)] = failed_jobs(runtime)
    assert name == "evaluate_opportunities" and "still busy" in reason
