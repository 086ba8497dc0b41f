"""End to end on a CRM's fake: signed deliveries in, W real workers, CRM calls out.

``python bench/e2e.py [--crm hubspot|salesforce] [--events N] [--batch B]
[--workers W] [--latency S] [--budget C] [--deals D] [--intake-requests R]``

(``--crm salesforce``: see :func:`run_salesforce`; the steps below are HubSpot's.)

1. A local HubSpot portal (``tests/fakes/hubspot_server.py``, filled by
   ``bench/fake_orgs.py``) answers every call after ``--latency`` seconds.
2. ``W`` real ``onstrategy worker`` processes start on an empty Redis database
   (``ONSTRATEGY_BENCH_REDIS_URL``, default db 13; refused when not empty) and a
   SQLite store, with the portal budget ``--budget`` calls per 10 s.
3. ``N`` ``deal.propertyChange`` events on ``D`` deals (default: every event a
   different deal) are posted, signed, in deliveries of ``B`` events to the real
   app, as fast as it answers; the run ends when every deal has its decision.
4. It prints events/s (and per worker), HubSpot calls per 1,000 events by kind
   against a per-event integration (read, update and a task read: 3 calls per
   event), and p50/p99 from a delivery's 2xx to the deal's update in the CRM.

``--intake-requests R`` then measures the webhook path alone: gunicorn ``-w 2``
(sync workers) serving the app, then a bare Flask endpoint that only reads the
body, each sent ``R`` single-event signed deliveries by 4 client processes;
rounds alternate and the best of 3 each gives the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import responses
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.e2e_common import (  # noqa: E402
    PER_EVENT_CALLS,
    REDIS_URL,
    SECRET,
    empty_redis,
    environment,
    event,
    signed,
)
from bench.e2e_intake import run_intake  # noqa: E402
from bench.fake_orgs import build_hubspot, build_salesforce, hubspot_managers  # noqa: E402
from integration.app.factory import create_app  # noqa: E402
from integration.jobs.queues import INBOX_KEY, make_queue  # noqa: E402
from integration.jobs.schedule import PERIODIC_JOB_IDS  # noqa: E402
from integration.jobs.worker import Worker  # noqa: E402
from integration.runtime import Runtime  # noqa: E402
from integration.settings import Settings  # noqa: E402
from webhooks.signed_events import sign  # noqa: E402


def start_workers(
    count: int, env: dict[str, str], redis: Redis, logs: Path
) -> list[subprocess.Popen]:
    """``count`` real workers, each logging to ``logs/worker-N.log`` (shown if the run stalls)."""
    command = [sys.executable, "-c", "from integration.cli.commands import main; main()", "worker"]
    workers = []
    for n in range(count):
        log = open(logs / f"worker-{n}.log", "wb")  # noqa: SIM115 - the worker keeps it open
        workers.append(
            subprocess.Popen(
                command, env={**os.environ, **env}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        )
    deadline = time.time() + 60
    while len(redis.smembers("rq:workers")) < count and time.time() < deadline:
        time.sleep(0.1)
    return workers


def idle(redis: Redis) -> bool:
    """Nothing waiting, running or scheduled but the periodic reconcile sweep."""
    queue = make_queue(redis)
    scheduled = set(queue.scheduled_job_registry.get_job_ids()) - set(PERIODIC_JOB_IDS)
    return not (
        redis.llen(INBOX_KEY) or queue.count or queue.started_job_registry.count or scheduled
    )


def run_pipeline(options: argparse.Namespace, folder: Path) -> None:
    redis = empty_redis()
    deals_count = options.deals or options.events
    book = build_hubspot(max(1, deals_count // 5), deals_count)
    fake = book.fake
    with open(folder / "rules" / "managers.csv", "a", encoding="utf-8") as handle:
        handle.writelines(f"hubspot,{rep},{manager}\n" for rep, manager in hubspot_managers(book))
    env = environment(folder, fake.url, options.budget)
    app = create_app(Settings.from_env(env))
    client = app.test_client()
    deal_ids = list(fake.state.objects["deals"])[:deals_count]
    workers = start_workers(options.workers, env, redis, folder)
    fake.latency = options.latency
    first_call = len(fake.requests)
    delivered: list[tuple[str, float]] = []
    start = time.time()
    try:
        for first in range(0, options.events, options.batch):
            batch = [
                event(n, deal_ids[n % deals_count]) for n in range(first, first + options.batch)
            ]
            body, headers = signed(batch[: options.events - first])
            assert client.post("/webhooks/hubspot", data=body, headers=headers).status_code < 300
            now = time.time()
            delivered += [(str(e["objectId"]), now) for e in batch[: options.events - first]]
        wait_for_decisions(redis, folder, deals_count)
        elapsed = time.time() - start
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
        fake.stop()
        redis.flushdb()
    report_pipeline(options, fake.requests[first_call:], delivered, elapsed, _decisions(folder))


def wait_for_decisions(redis: Redis, folder: Path, deals: int, stall: float = 120.0) -> None:
    """Until the queues are idle and every deal has a decision; stop with the workers'
    last log lines when nothing is decided for ``stall`` seconds."""
    last, since = -1, time.time()
    while not idle(redis) or (decided := _decided(folder)) < deals:
        decided = _decided(folder)
        if decided != last:
            last, since = decided, time.time()
        elif time.time() - since > stall:
            tails = "".join(
                f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                for log in sorted(folder.glob("worker-*.log"))
            )
            raise SystemExit(f"stalled at {decided} of {deals} deals decided\n{tails}")
        time.sleep(0.2)


def _decided(folder: Path) -> int:
    with sqlite3.connect(folder / "store.db") as db:
        return db.execute("SELECT COUNT(DISTINCT opportunity_id) FROM decisions").fetchone()[0]


def _decisions(folder: Path) -> dict[str, list[float]]:
    """Deal id -> when each of its decisions was stored (after its CRM write)."""
    found: dict[str, list[float]] = {}
    with sqlite3.connect(folder / "store.db") as db:
        for deal, at in db.execute("SELECT opportunity_id, decided_at FROM decisions"):
            stamp = datetime.fromisoformat(at)
            stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
            found.setdefault(str(deal), []).append(stamp.timestamp())
    return found


def report_pipeline(options, requests, delivered, elapsed: float, writes: dict) -> None:
    kinds = Counter(_kind(r) for r in requests)
    calls = sum(kinds.values())
    per_1000 = calls * 1000 / options.events
    waits = sorted(
        min((t for t in writes.get(deal, []) if t >= at), default=float("nan")) - at
        for deal, at in delivered
    )
    waits = [w for w in waits if w == w]
    print(
        f"HubSpot fake, {options.latency * 1000:.0f} ms per call, budget {options.budget} "
        f"per 10 s; {options.events} events on {options.deals or options.events} deals in "
        f"deliveries of {options.batch}; {options.workers} worker(s)"
    )
    rate = options.events / elapsed
    print(f"  {rate:.1f} events/s ({rate / options.workers:.1f} per worker), {elapsed:.1f} s")
    print(
        f"  {calls} HubSpot calls: {per_1000:.1f} per 1,000 events "
        f"(a per-event integration: {PER_EVENT_CALLS * 1000}; "
        f"{PER_EVENT_CALLS * 1000 / per_1000:.0f}x fewer)"
    )
    for kind, count in kinds.most_common():
        print(f"    {kind:<40} {count:>6}  ({count * 1000 / options.events:.1f} per 1,000)")
    if waits:
        p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
        print(
            f"  delivery -> decision stored (after the CRM write): "
            f"p50 {statistics.median(waits):.2f} s, p99 {p99:.2f} s ({len(waits)} events)"
        )


def _kind(request) -> str:
    path = request.path
    for marker in ("/batch/read", "/batch/update", "/batch/create", "/search"):
        if marker in path:
            return f"{request.method} {path.split(marker)[0]}{marker}"
    return f"{request.method} {path}"


def run_salesforce(options: argparse.Namespace, folder: Path) -> None:
    """The same run on Salesforce: signed JSON change events, one in-process worker.

    The Salesforce fake is a ``responses`` mock, which only this process can
    reach, so the worker runs here (``Worker.work(burst=True)``) and the figure
    that matters is the calls per 1,000 events, not the rate.
    """
    redis = empty_redis()
    deals_count = options.deals or options.events
    book = build_salesforce(max(1, deals_count // 5), deals_count)
    fake = book.fake
    settings = Settings.from_env(
        {
            "ONSTRATEGY_RULES_DIR": str(folder / "rules"),
            "ONSTRATEGY_DATABASE_URL": f"sqlite:///{folder / 'store.db'}",
            "ONSTRATEGY_REDIS_URL": REDIS_URL,
            "ONSTRATEGY_CRM": "salesforce",
            "ONSTRATEGY_SALESFORCE_WEBHOOK_SECRET": SECRET,
        }
    )
    ids = sorted(fake.opportunities)[:deals_count]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.register(mock)
        runtime = Runtime(settings, redis=redis, connectors={"salesforce": fake.connector()})
        client = create_app(runtime=runtime).test_client()
        first_call = len(fake.calls)
        start = time.time()
        try:
            for first in range(0, options.events, options.batch):
                count = min(options.batch, options.events - first)
                events = [
                    {"id": f"e{n}", "recordId": ids[n % deals_count], "changedFields": ["Amount"]}
                    for n in range(first, first + count)
                ]
                body = json.dumps({"events": events}).encode()
                stamp = str(int(time.time()))
                headers = {
                    "Content-Type": "application/json",
                    "X-OnStrategy-Timestamp": stamp,
                    "X-OnStrategy-Signature": sign(SECRET, stamp, body),
                }
                response = client.post("/webhooks/salesforce/events", data=body, headers=headers)
                assert response.status_code < 300, response.get_data(as_text=True)
            Worker(runtime).work(burst=True)
            elapsed = time.time() - start
        finally:
            redis.flushdb()
    kinds = Counter(call.kind for call in fake.calls[first_call:])
    calls = sum(kinds.values())
    print(
        f"Salesforce fake (in-process), {options.events} events on {deals_count} "
        f"opportunities in deliveries of {options.batch}; 1 in-process worker, {elapsed:.1f} s"
    )
    print(
        f"  {calls} Salesforce calls: {calls * 1000 / options.events:.1f} per 1,000 events "
        f"(a per-event integration: {PER_EVENT_CALLS * 1000})"
    )
    for kind, count in kinds.most_common():
        print(f"    {kind:<40} {count:>6}  ({count * 1000 / options.events:.1f} per 1,000)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--deals", type=int, default=0, help="distinct deals (default: events)")
    parser.add_argument("--intake-requests", type=int, default=0)
    parser.add_argument("--crm", choices=("hubspot", "salesforce"), default="hubspot")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        shutil.copytree(ROOT / "rules", folder / "rules")
        if options.events and options.crm == "salesforce":
            run_salesforce(options, folder)
        elif options.events:
            run_pipeline(options, folder)
        if options.intake_requests:
            run_intake(options, folder)


if __name__ == "__main__":
    main()
