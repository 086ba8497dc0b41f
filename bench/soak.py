"""Soak: minutes of random faults over a few thousand events, then one line of truth.

    python bench/soak.py --redis-url redis://127.0.0.1:6379/9 [--minutes 3] [--events 3000]
        [--workers 2] [--database-url postgresql+psycopg://...]

Seeds the sandbox CRM with reps whose deals ask for coaching, starts real
``onstrategy worker`` processes, and for the given time submits random batches
of change events (redeliveries included) while it changes deals (some stop
qualifying for coaching, some start), completes tasks as a manager would, and
SIGKILLs a random worker (with its scheduler) and starts a new one. Then it
lets the workers finish and prints one line:

    acknowledged=N applied=N duplicates=N lost=N

An event is *applied* when its deal's latest decision was taken after the event
was acknowledged and the CRM holds that decision's tag; *lost* is the rest.
*Duplicates* counts second live tasks for one deal and rule (store or CRM) and
open tasks above a rep's cap. The goal is 0 and 0. The Redis database must be
empty (it is flushed at the end).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from redis import Redis
from sqlalchemy import func, select

from connectors.sandbox import SandboxConnector
from integration.domain.events import ChangeEvent
from integration.jobs.intake import RedisIntake
from integration.jobs.queues import make_queue
from integration.store.database import Store
from integration.store.models import DecisionRow

ROOT = Path(__file__).resolve().parent.parent
WORKER = [sys.executable, "-c", "from integration.cli.commands import main; main()", "worker"]


class Soak:
    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args, self.folder = args, folder
        self.rnd = random.Random(args.seed)
        shutil.copytree(ROOT / "rules", folder / "rules")
        self.database_url = args.database_url or f"sqlite:///{folder / 'store.db'}"
        self.env = {
            **os.environ,
            "ONSTRATEGY_RULES_DIR": str(folder / "rules"),
            "ONSTRATEGY_DATABASE_URL": self.database_url,
            "ONSTRATEGY_REDIS_URL": args.redis_url,
            "ONSTRATEGY_CRM": "sandbox",
        }
        self.redis = Redis.from_url(args.redis_url, socket_timeout=10)
        if self.redis.dbsize():
            raise SystemExit(f"soak: {args.redis_url} is not empty; use an unused database")
        self.sandbox = SandboxConnector(str(folder / "onstrategy-sandbox.db"))
        self.store = Store(self.database_url)
        self.store.migrate()
        self.deals = self._seed()
        self.acked: list[tuple[str, datetime]] = []
        self.workers: list[subprocess.Popen] = []
        self.log = open(folder / "workers.log", "ab")  # noqa: SIM115 (closed in finish)

    def _seed(self) -> list[str]:
        reps = [f"U-{i}" for i in range(1, self.args.reps + 1)]
        self.sandbox.add_owners(
            [{"id": "U-0", "name": "Pat Manager", "email": "p@example.com"}]
            + [{"id": r, "name": f"Rep {r}", "manager_id": "U-0"} for r in reps]
        )
        self.sandbox.add_accounts([{"id": "ACC-R", "name": "Shopright", "industry": "Retail"}])
        deals = [
            {
                "id": f"OPP-{rep}-{n:02d}",
                "name": f"Deal {rep} {n}",
                "account_id": "ACC-R",
                "owner_id": rep,
                "amount": 150_000 + n * 1000,
                "stage": "Negotiation",
                "probability": 80,
                "close_date": "2027-02-01",
                "products": ["Support Renewal"],
            }
            for rep in reps
            for n in range(self.args.deals_per_rep)
        ]
        self.sandbox.add_opportunities(deals)
        return [d["id"] for d in deals]

    def start_worker(self) -> None:
        self.workers.append(
            subprocess.Popen(
                WORKER,
                env=self.env,
                cwd=self.folder,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def kill_worker(self) -> None:
        worker = self.workers.pop(self.rnd.randrange(len(self.workers)))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)

    def submit(self, intake: RedisIntake) -> None:
        picked = self.rnd.sample(self.deals, self.rnd.randint(1, 8))
        events = [
            ChangeEvent("sandbox", "opportunity", opp, f"e{len(self.acked)}-{opp}")
            for opp in picked
        ]
        events += self.rnd.sample(events, min(2, len(events)))  # redeliveries
        intake.submit(events)
        now = datetime.now(UTC)
        self.acked.extend((e.object_id, now) for e in events[: len(picked)])

    def disturb(self) -> None:
        """One random fault or change, as the soak goes."""
        roll = self.rnd.random()
        if roll < 0.02 and len(self.workers) > 0:
            self.kill_worker()
            self.start_worker()
        elif roll < 0.15:
            opp = self.rnd.choice(self.deals)
            self.sandbox.set_opportunity(opp, amount=self.rnd.choice([5_000, 250_000]))
        elif roll < 0.20:
            open_tasks = [t for t in self.sandbox.tasks() if t["status"] != "Completed"]
            if open_tasks:
                self.sandbox.complete_task(self.rnd.choice(open_tasks)["id"])

    def run(self) -> None:
        for _ in range(self.args.workers):
            self.start_worker()
        intake = RedisIntake(self.redis)
        deadline = time.monotonic() + self.args.minutes * 60
        while time.monotonic() < deadline and len(self.acked) < self.args.events:
            self.disturb()
            self.submit(intake)
            time.sleep(self.rnd.uniform(0, 0.05))
        # Every deal once more, after the last change: each must end in step with the CRM.
        final = [ChangeEvent("sandbox", "opportunity", o, f"final-{o}") for o in self.deals]
        intake.submit(final)
        now = datetime.now(UTC)
        self.acked.extend((e.object_id, now) for e in final)
        self.wait_idle(self.args.settle_minutes * 60)

    def wait_idle(self, timeout: float) -> None:
        queue = make_queue(self.redis)
        deadline, quiet = time.monotonic() + timeout, 0
        while time.monotonic() < deadline and quiet < 5:
            busy = (
                queue.count
                or queue.started_job_registry.count
                or queue.scheduled_job_registry.count
            )
            quiet = 0 if busy else quiet + 1
            time.sleep(1)

    def verdict(self) -> str:
        latest = self._latest_decisions()
        applied = 0
        for opp, at in self.acked:
            decided = latest.get(opp)
            fit = self.sandbox.opportunity_fields(opp)["fit"]
            if decided and decided[0] >= at and decided[1] == fit:
                applied += 1
        return (
            f"acknowledged={len(self.acked)} applied={applied} "
            f"duplicates={self._duplicates()} lost={len(self.acked) - applied}"
        )

    def _latest_decisions(self) -> dict[str, tuple[datetime, str]]:
        with self.store.session() as session:
            newest = (
                select(DecisionRow.opportunity_id, func.max(DecisionRow.id).label("id"))
                .where(DecisionRow.crm == "sandbox")
                .group_by(DecisionRow.opportunity_id)
                .subquery()
            )
            rows = session.execute(
                select(DecisionRow.opportunity_id, DecisionRow.decided_at, DecisionRow.fit).join(
                    newest, DecisionRow.id == newest.c.id
                )
            )
            return {opp: (_utc(at), fit) for opp, at, fit in rows}

    def _duplicates(self) -> int:
        rows = self.store.tasks.all_tasks("sandbox")
        live = Counter(
            (r.opportunity_id, r.rule) for r in rows if r.status in ("open", "starting", "queued")
        )
        crm_open = Counter(
            t["opportunity_id"] for t in self.sandbox.tasks() if t["status"] != "Completed"
        )
        cap = 2
        per_rep = Counter(r.rep_id for r in rows if r.status == "open")
        return (
            sum(n - 1 for n in live.values() if n > 1)
            + sum(n - 1 for n in crm_open.values() if n > 1)
            + sum(n - cap for n in per_rep.values() if n > cap)
        )

    def finish(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        for worker in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
        self.log.close()
        self.redis.flushdb()
        self.store.engine.dispose()


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True, help="an empty Redis database")
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp folder")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--deals-per-rep", type=int, default=8)
    parser.add_argument("--settle-minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="onstrategy-soak-") as folder:
        soak = Soak(args, Path(folder))
        try:
            soak.run()
            print(soak.verdict())
        finally:
            soak.finish()


if __name__ == "__main__":
    main()
