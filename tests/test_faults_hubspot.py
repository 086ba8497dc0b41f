"""HubSpot under storms, worked by two real worker processes on PostgreSQL.

The local HubSpot fake answers the workers over HTTP; mid-run it refuses calls
with 429 (the ten-second limit, ``Retry-After``), fails batch updates with 503
and commits task creations whose answers never arrive (a timeout after the
commit). Webhook events, redelivered and interleaved, reach the workers through
the real intake. At the end every promise must hold in the CRM and the store:
each deal tagged, one decision per event at least, one live coaching task per
deal at most, never more open tasks per rep than the cap, no failed jobs.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from redis import Redis
from worker_procs import start_worker, stop_workers

from fakes.hubspot_server import FakeHubSpot
from integration.domain.events import ChangeEvent
from integration.jobs.intake import RedisIntake
from integration.jobs.queues import make_queue
from integration.jobs.schedule import PERIODIC_JOB_IDS
from integration.runtime import Runtime
from integration.settings import Settings
from integration.store.database import Store

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "secret-token"
MANAGER = "8"
REPS = ("11", "12", "13")
DEALS_PER_REP = 6


class Portal:
    """A HubSpot portal whose every deal asks for coaching, and two real workers."""

    def __init__(self, tmp: Path, hs: FakeHubSpot, database_url: str, redis_url: str) -> None:
        rules = tmp / "rules"
        shutil.copytree(ROOT / "rules", rules)
        with open(rules / "managers.csv", "a", encoding="utf-8") as handle:
            handle.writelines(f"hubspot,{rep},{MANAGER}\n" for rep in REPS)
        self.hs = hs
        hs.add_owner(MANAGER, "Grace", "Hopper", "grace@example.com")
        hs.add_company("10", name="Shopright Stores", industry="RETAIL", numberofemployees="400")
        self.deals: dict[str, str] = {}  # deal id -> rep
        for rep in REPS:
            hs.add_owner(rep, "Rep", rep, f"rep{rep}@example.com")
            for n in range(DEALS_PER_REP):
                deal = f"{rep}{n:03d}"
                hs.add_deal(
                    deal,
                    company="10",
                    line_items=("Support Renewal",),
                    amount=str(150_000 + n * 1000),
                    dealstage="contractsent",
                    pipeline="default",
                    hubspot_owner_id=rep,
                    closedate="2027-01-31T00:00:00.000Z",
                    hs_is_closed="false",
                )
                self.deals[deal] = rep
        self.env = {
            **os.environ,
            "ONSTRATEGY_RULES_DIR": str(rules),
            "ONSTRATEGY_DATABASE_URL": database_url,
            "ONSTRATEGY_REDIS_URL": redis_url,
            "ONSTRATEGY_CRM": "hubspot",
            "ONSTRATEGY_HUBSPOT_ACCESS_TOKEN": TOKEN,
            "ONSTRATEGY_HUBSPOT_API_URL": hs.url,
            "ONSTRATEGY_TASK_CHECK_SECONDS": "0",
        }
        self.redis = Redis.from_url(redis_url, socket_timeout=5)
        self.store = Store(database_url)
        self.store.migrate()
        settings = Settings.from_env({k: v for k, v in self.env.items() if k.startswith("ONS")})
        self.runtime = Runtime(settings, store=self.store, redis=self.redis)
        self.queue = make_queue(self.redis)
        self.log = open(tmp / "workers.log", "ab")  # noqa: SIM115 (closed by stop)
        self.workers: list[subprocess.Popen] = []

    def start_workers(self, n: int) -> None:
        self.workers += [start_worker(self.env, self.log) for _ in range(n)]

    def stop(self) -> None:
        stop_workers(self.workers)
        self.log.close()
        self.store.engine.dispose()

    def busy(self) -> bool:
        scheduled = set(self.queue.scheduled_job_registry.get_job_ids()) - set(PERIODIC_JOB_IDS)
        return bool(
            self.redis.llen("onstrategy:inbox")
            or self.queue.count
            or self.queue.started_job_registry.count
            or scheduled
        )

    def wait_idle(self, timeout: float) -> None:
        """Until nothing is queued, running or scheduled for two seconds in a row."""
        deadline, quiet = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            self.watch()
            if self.busy():
                quiet = None
            elif quiet is None:
                quiet = time.monotonic()
            elif time.monotonic() - quiet >= 2.0:
                return
            time.sleep(0.1)
        raise AssertionError(f"jobs still pending after {timeout}s: {self.queue.count} queued")

    def open_tasks(self) -> list[tuple[str, dict]]:
        """(deal, task) for every task in the portal that is not completed."""
        return [
            (deal, task)
            for deal in self.deals
            for task in self.hs.tasks_for_deal(deal)
            if task["properties"].get("hs_task_status") != "COMPLETED"
        ]

    most_open_seen = 0

    def watch(self) -> None:
        per_rep = Counter(self.deals[deal] for deal, _ in self.open_tasks())
        self.most_open_seen = max([self.most_open_seen, *per_rep.values()])

    def failures(self) -> list[str]:
        registry = self.queue.failed_job_registry
        jobs = self.queue.job_class.fetch_many(registry.get_job_ids(), self.redis)
        return [str(job.latest_result().exc_string).strip().splitlines()[-1] for job in jobs]


@pytest.fixture
def portal(tmp_path, postgres_url, redis_url, redis_conn):
    with FakeHubSpot(token=TOKEN) as hs:
        world = Portal(tmp_path, hs, postgres_url, redis_url)
        yield world
        world.stop()


def _deliver(portal: Portal, rnd: random.Random, round_no: int) -> None:
    """One event per deal in deliveries of a few, each with a redelivery of another."""
    intake = RedisIntake(portal.redis)
    events = [
        ChangeEvent("hubspot", "opportunity", deal, f"hubspot:r{round_no}-{deal}")
        for deal in portal.deals
    ]
    rnd.shuffle(events)
    for start in range(0, len(events), 3):
        intake.submit(events[start : start + 3] + rnd.sample(events, 1))


def _complete_one_task_per_rep(portal: Portal) -> set[str]:
    """A manager completes one open task of each rep in HubSpot; their deals."""
    done: dict[str, str] = {}
    for deal, task in portal.open_tasks():
        if portal.deals[deal] not in done:
            with portal.hs.state.lock:
                task["properties"]["hs_task_status"] = "COMPLETED"
            done[portal.deals[deal]] = deal
    return set(done.values())


def test_two_workers_through_429_and_503_storms_and_lost_answers_keep_every_promise(portal):
    hs, rnd = portal.hs, random.Random(7)
    cap = portal.runtime.rulebook().ruleset.max_open_per_rep
    # Two 429s in a row are waited out inside the call (every worker pauses); a task
    # created whose answer is lost fails the job, which runs again about 10 s later,
    # re-reads the deals and adopts the task it already created.
    hs.fail_next(429, count=2, headers={"Retry-After": "1"})
    hs.fail_next(504, count=1, path="/tasks/batch/create", commit=True)
    portal.start_workers(2)
    _deliver(portal, rnd, 1)
    portal.wait_idle(timeout=90)
    assert Counter(portal.deals[deal] for deal, _ in portal.open_tasks()) == dict.fromkeys(
        REPS, cap
    )
    # Managers complete a task each; the next events free those slots for queued deals,
    # through another 429 and three 503s on the deals' read: more than the call's own
    # retries, so the job runs again.
    completed = _complete_one_task_per_rep(portal)
    hs.fail_next(429, count=2, headers={"Retry-After": "1"})
    hs.fail_next(503, count=3, path="/deals/batch/read")
    _deliver(portal, rnd, 2)
    portal.wait_idle(timeout=90)

    assert portal.failures() == []
    for deal in portal.deals:
        assert hs.deal_properties(deal).get("strategy_fit") == "Off Strategy", deal
    per_deal = Counter(deal for deal, _ in portal.open_tasks())
    assert max(per_deal.values()) == 1, f"duplicate tasks: {per_deal}"
    assert not completed & set(per_deal), "a completed task was created again"
    assert portal.most_open_seen <= cap
    per_rep = Counter(portal.deals[deal] for deal in per_deal)
    assert per_rep == dict.fromkeys(REPS, cap)  # each freed slot went to a queued deal
    live = [t for t in portal.store.tasks.all_tasks("hubspot") if t.status == "open"]
    assert sorted(t.task_id for t in live) == sorted(t["id"] for _, t in portal.open_tasks())
    decided = {d.opportunity_id for d in portal.store.latest_decisions("hubspot")}
    assert decided == set(portal.deals)
