"""How fast is the dashboard at size? ``python bench/dashboard.py``.

Fills a SQLite store's current-state table with N opportunities (default 100,000;
the same pipeline as ``bench/insights.py``: 12 teams of 8 reps, a year of created
and closed dates) and optionally H decisions of history per opportunity, warms the
insights once (the first report of a process judges every deal), then, through the
real app with a signed-in session, times the first request of each page and API call
a leader's visit makes (a question not asked since the store last changed: the
report is computed) and then R more (the store unchanged: the kept answers):

- ``/dashboard`` (open pipeline), ``/dashboard?status=won``, ``/dashboard?team=...``,
  ``/dashboard/deals?team=...&fit=off``, ``/dashboard/managers/<name>``;
- ``/api/report``, ``/api/report?team=...``, ``/api/coaching/<name>``.

The goal: p95 <= 300 ms for each, and the same with ``--history 3`` (the cost
does not grow with the decision history).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.insights import TODAY, fill  # noqa: E402
from integration.app.factory import create_app  # noqa: E402
from integration.reports.service import Ask  # noqa: E402
from integration.runtime import Runtime  # noqa: E402
from integration.settings import Settings  # noqa: E402
from integration.store.database import Store  # noqa: E402

TOKEN = "bench-token"
PATHS = (
    "/dashboard",
    "/dashboard?status=won",
    "/dashboard?team=Team+3",
    "/dashboard/deals?team=Team+3&fit=off",
    "/dashboard/managers/M-03",
    "/api/report",
    "/api/report?team=Team+3",
    "/api/coaching/M-03",
)


def signed_in(app):
    """A test client with a session, signed in through the real form."""
    client = app.test_client()
    page = client.get("/signin").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = client.post("/signin", data={"csrf_token": csrf, "token": TOKEN, "next": "/"})
    assert answer.status_code == 302, answer.status_code
    return client


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[18] if len(times) >= 20 else max(times)


def run(count: int, history: int, requests: int) -> tuple[float, dict[str, tuple[float, ...]]]:
    with tempfile.TemporaryDirectory() as workdir:
        store = Store(f"sqlite:///{workdir}/store.db")
        store.migrate()
        settings = Settings(
            rules_dir=str(ROOT / "rules"),
            database_url=store.url,
            crms=("hubspot",),
            admin_token=TOKEN,
        )
        runtime = Runtime(settings, store=store, today=lambda: TODAY)
        fill(store, runtime, count, history)
        started = time.perf_counter()
        runtime.insights.report(Ask())
        warm_up = time.perf_counter() - started
        client = signed_in(create_app(settings, runtime=runtime))
        figures = {}
        for path in PATHS:
            started = time.perf_counter()
            assert client.get(path).status_code == 200, path
            first = time.perf_counter() - started
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get(path)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, (path, response.status_code)
            figures[path] = (first, statistics.median(times), p95(times))
        store.engine.dispose()
    return warm_up, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=0, help="decisions per opportunity")
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    warm_up, figures = run(args.opportunities, args.history, args.requests)
    table = Table(
        title=f"Dashboard at {args.opportunities:,} opportunities, "
        f"{args.history * args.opportunities:,} decisions of history "
        f"(first report of the process: {warm_up:.2f} s)"
    )
    for column in ("request", "first (ms)", "p50 (ms)", "p95 (ms)"):
        table.add_column(column, justify="right" if column != "request" else "left")
    for path, (first, p50, high) in figures.items():
        table.add_row(path, f"{first * 1000:.0f}", f"{p50 * 1000:.0f}", f"{high * 1000:.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
