"""Is a sweep's memory flat in the number of opportunities? ``python bench/sweep_memory.py``.

``target_sync.py`` runs the CRM fakes in the same process, so its ``tracemalloc``
peak also counts the fakes' own data, query results and call logs. This
benchmark isolates the pipeline: the sandbox CRM keeps its records in a SQLite
file (outside Python's heap), the connector streams pages of 2,000, and the
peak that remains is what the sweep itself holds: one page of records and
decisions at a time. Flat means the peak does not grow with the pipeline.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.base import OpportunityQuery  # noqa: E402
from connectors.sandbox import SandboxConnector  # noqa: E402
from connectors.sandbox_seed import seed  # noqa: E402
from integration.pipeline.sweep import SweepPlan, run_sweep  # noqa: E402
from integration.runtime import Runtime  # noqa: E402
from integration.settings import Settings  # noqa: E402
from integration.store.database import Store  # noqa: E402


def measure(opportunities: int) -> tuple[float, int, float]:
    """Seconds (traced), opportunities evaluated and peak MB of one full sweep."""
    with tempfile.TemporaryDirectory() as workdir:
        crm = SandboxConnector(f"{workdir}/crm.db")
        seed(
            crm,
            accounts=max(300, opportunities // 5),
            opportunities=opportunities,
            today=date(2026, 11, 26),
        )
        store = Store(f"sqlite:///{workdir}/store.db")
        store.migrate()
        settings = Settings(rules_dir=str(ROOT / "rules"), database_url=store.url)
        runtime = Runtime(settings, store=store, connectors={"sandbox": crm})
        tracemalloc.start()
        started = time.perf_counter()
        outcome = run_sweep(runtime, "sandbox", SweepPlan("all", OpportunityQuery(page_size=2000)))
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        crm.close()
        store.engine.dispose()
        return seconds, outcome.evaluated, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[5_000, 20_000, 50_000])
    args = parser.parse_args()
    table = Table(title="Peak memory of a full sweep (sandbox CRM, pages of 2,000)")
    for column in ("opportunities", "evaluated", "wall time (traced)", "peak"):
        table.add_column(column, justify="right")
    for size in args.sizes:
        seconds, evaluated, peak = measure(size)
        table.add_row(f"{size:,}", f"{evaluated:,}", f"{seconds:.1f} s", f"{peak:.1f} MB")
    Console().print(table)


if __name__ == "__main__":
    main()
