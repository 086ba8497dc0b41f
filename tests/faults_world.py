"""A small world for the fault suite: real worker processes, Redis, a store, the sandbox CRM.

``FaultWorld`` seeds a file-backed sandbox CRM with reps whose deals all ask for
coaching, starts real ``onstrategy worker`` processes against Redis and the
store, and checks the promises at the end of a run: every deal's fields right,
at most one live task per deal and rule, never more open than the cap per rep,
slot counters equal to their rows, and an audit row for every CRM write.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from redis import Redis
from worker_procs import start_worker, stop_workers

from connectors.sandbox import SandboxConnector
from integration.domain.events import ChangeEvent
from integration.jobs.queues import make_queue
from integration.jobs.schedule import PERIODIC_JOB_IDS
from integration.runtime import Runtime
from integration.settings import Settings
from integration.store.database import Store
from integration.store.models import TaskRow, WriteRow

ROOT = Path(__file__).resolve().parent.parent
MANAGER = "U-9"


def deal(rep: str, number: int, amount: int = 150_000) -> dict[str, Any]:
    """A large, late, off-strategy deal: it asks for a coaching task."""
    return {
        "id": f"OPP-{rep}-{number:02d}",
        "name": f"Retail deal {rep} {number}",
        "account_id": "ACC-R",
        "owner_id": rep,
        "amount": amount + number * 1000,
        "stage": "Negotiation",
        "probability": 80,
        "close_date": "2027-02-01",
        "products": ["Support Renewal"],
    }


class FaultWorld:
    def __init__(self, tmp: Path, database_url: str, redis_url: str, reps: int, deals: int):
        rules = tmp / "rules"
        subprocess.run(["cp", "-r", str(ROOT / "rules"), str(rules)], check=True)
        self.tmp = tmp
        self.reps = [f"U-{i}" for i in range(1, reps + 1)]
        self.redis_url, self.database_url = redis_url, database_url
        self.env = {
            **os.environ,
            "ONSTRATEGY_RULES_DIR": str(rules),
            "ONSTRATEGY_DATABASE_URL": database_url,
            "ONSTRATEGY_REDIS_URL": redis_url,
            "ONSTRATEGY_CRM": "sandbox",
            # The end state is checked against the CRM as soon as the burst is done, so
            # every job reads its reps' task states (by default once per rep per minute).
            "ONSTRATEGY_TASK_CHECK_SECONDS": "0",
        }
        self.sandbox = SandboxConnector(str(tmp / "onstrategy-sandbox.db"))
        owners = [{"id": MANAGER, "name": "Pat Manager", "email": "p@example.com", "team": "E"}]
        owners += [
            {"id": r, "name": f"Rep {r}", "email": f"{r}@example.com", "manager_id": MANAGER}
            for r in self.reps
        ]
        self.sandbox.add_owners(owners)
        self.sandbox.add_accounts([{"id": "ACC-R", "name": "Shopright", "industry": "Retail"}])
        self.deals = [deal(r, n) for r in self.reps for n in range(deals)]
        self.sandbox.add_opportunities(self.deals)
        self.store = Store(database_url)
        self.store.migrate()
        self.redis = Redis.from_url(redis_url, socket_timeout=5)
        settings = Settings.from_env(self.env)
        self.runtime = Runtime(
            settings, store=self.store, redis=self.redis, connectors={"sandbox": self.sandbox}
        )
        self.queue = make_queue(self.redis)
        self.workers: list[subprocess.Popen] = []
        self.log = open(tmp / "workers.log", "ab")  # noqa: SIM115 (closed by stop_workers)
        self.max_open_seen = 0
        self.proxy: Any = None  # a TcpProxy in front of the store, when a test adds one

    @property
    def cap(self) -> int:
        return self.runtime.rulebook().ruleset.max_open_per_rep

    def event(self, opp: str, key: str) -> ChangeEvent:
        return ChangeEvent(crm="sandbox", kind="opportunity", object_id=opp, key=key)

    # -- workers -------------------------------------------------------------

    def start_workers(self, n: int, extra_env: dict[str, str] | None = None) -> None:
        env = {**self.env, **(extra_env or {})}
        # The working folder: where the workers find the sandbox CRM's file.
        self.workers += [start_worker(env, self.log, cwd=self.tmp) for _ in range(n)]

    def kill_worker(self, worker: subprocess.Popen) -> None:
        """SIGKILL a worker with its scheduler process, as when its machine dies."""
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        self.workers.remove(worker)

    def stop_workers(self) -> None:
        stop_workers(self.workers)
        time.sleep(0.5)

    def failures(self) -> list[str]:
        """The last line of every failed job's reason."""
        registry = self.queue.failed_job_registry
        reasons = []
        for job in self.queue.job_class.fetch_many(registry.get_job_ids(), self.redis):
            result = job.latest_result() if job else None
            text = (result.exc_string if result else "") or ""
            reasons.append(text.strip().splitlines()[-1] if text.strip() else "?")
        return reasons

    def started(self, function: str) -> bool:
        """A job of ``function`` is running now."""
        ids = self.queue.started_job_registry.get_job_ids()
        jobs = self.queue.job_class.fetch_many(ids, self.redis) if ids else []
        return any(job is not None and function in job.func_name for job in jobs)

    def busy(self) -> bool:
        q = self.queue
        scheduled = set(q.scheduled_job_registry.get_job_ids()) - set(PERIODIC_JOB_IDS)
        return bool(q.count or q.started_job_registry.count or scheduled)

    def wait_idle(self, timeout: float, settle: float = 1.0) -> None:
        """Until no job is queued, running or scheduled (twice, ``settle`` apart)."""
        deadline = time.monotonic() + timeout
        quiet_since = None
        while time.monotonic() < deadline:
            self.watch()
            if self.busy():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return
            time.sleep(0.1)
        raise AssertionError(f"jobs still pending after {timeout}s: {self.queue.count} queued")

    def watch(self) -> None:
        """Sample the CRM: the most open coaching tasks any rep has had at once."""
        per_rep = Counter(self.owner_of(t["opportunity_id"]) for t in self.open_crm_tasks())
        self.max_open_seen = max([self.max_open_seen, *per_rep.values()])

    # -- the CRM and the store -------------------------------------------------

    def owner_of(self, opp: str) -> str:
        return self.sandbox.opportunity_fields(opp)["owner_id"]

    def open_crm_tasks(self) -> list[dict]:
        return [t for t in self.sandbox.tasks() if t["status"] != "Completed"]

    def rows(self) -> list[TaskRow]:
        return self.store.tasks.all_tasks("sandbox")

    def writes(self) -> list[WriteRow]:
        with self.store.session() as session:
            return list(session.query(WriteRow).filter(WriteRow.crm == "sandbox"))

    def check_promises(self) -> None:
        """The end state every fault must leave behind."""
        self.watch()
        rows = self.rows()
        live = Counter((r.opportunity_id, r.rule) for r in rows if r.status in ("open", "queued"))
        assert max(live.values(), default=0) <= 1, "two live tasks for one deal and rule"
        crm_open = Counter(t["opportunity_id"] for t in self.open_crm_tasks())
        assert max(crm_open.values(), default=0) <= 1, f"duplicate tasks in the CRM: {crm_open}"
        ours = {r.task_id for r in rows if r.status == "open"}
        assert {t["id"] for t in self.open_crm_tasks()} == ours, "CRM and store disagree"
        assert self.max_open_seen <= self.cap, (
            f"{self.max_open_seen} open under a cap of {self.cap}"
        )
        assert self.store.tasks.mismatched() == [], "slot counter differs from its rows"
        assert [r for r in rows if r.status == "starting"] == []
        for rep in self.reps:
            opened = sum(1 for r in rows if r.rep_id == rep and r.status == "open")
            waiting = sum(1 for r in rows if r.rep_id == rep and r.status == "queued")
            assert opened <= self.cap
            if waiting:
                assert opened == self.cap, f"{rep}: {waiting} queued behind {opened} open"

    def check_fields(self, expected_fit: dict[str, str]) -> None:
        """Every deal carries its tag, and every value in the CRM has its audit row."""
        audited = {
            (w.opportunity_id, w.field, w.new_value) for w in self.writes() if w.status == "ok"
        }
        for opp, fit in expected_fit.items():
            fields = self.sandbox.opportunity_fields(opp)
            assert fields["fit"] == fit, f"{opp}: {fields['fit']!r} != {fit!r}"
            assert (opp, "fit", fit) in audited, f"{opp}: written without an audit row"
