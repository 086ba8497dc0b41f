"""How fast is ``rules preview``, and is its memory flat? ``python bench/preview.py [SIZES]``.

For each size the sandbox CRM is seeded (up to 10,000 deals, repeated under new
ids beyond that) and every opportunity's current state is recorded under the
shipped rules, as the pipeline records it (the CRM writes and coaching calls are
left out: a preview never reads them). Then,
in a fresh process, the preview compares a draft that moves many deals (the
target market lowered from 1,000 to 500 employees) with the live version over
every opportunity, spooling every change as the CLI does. The child reports
wall time and its peak resident memory (``ru_maxrss``: everything the process
holds, Python and SQLite alike), so "flat" means the peak does not grow with
the pipeline.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.base import OpportunityQuery  # noqa: E402
from connectors.sandbox import SandboxConnector  # noqa: E402
from connectors.sandbox_seed import seed  # noqa: E402
from integration.domain.model import OpportunityRecord  # noqa: E402
from integration.engine.evaluate import evaluate  # noqa: E402
from integration.engine.rulebook import Rulebook, read_folder, rulebook_from_files  # noqa: E402
from integration.pipeline.planner import held_values, plan_fields, reported_values  # noqa: E402
from integration.pipeline.preview import ChangeSpool, run_preview  # noqa: E402
from integration.store.database import Store  # noqa: E402
from integration.store.entries import DecisionEntry  # noqa: E402
from integration.store.models import StateRow  # noqa: E402

TODAY = date(2026, 11, 26)


SEEDED = 10_000  # deals seeded and decided; larger sizes repeat them under new ids


def setup(workdir: str, opportunities: int) -> float:
    """Seed the sandbox and record every opportunity's live decision and state; seconds taken.

    Each state row is what the pipeline records (facts as read, live decision, the
    values the CRM holds after the writes), inserted in bulk without the decision
    history, the CRM writes and the coaching calls, which a preview never reads.
    """
    crm = SandboxConnector(f"{workdir}/crm.db")
    seeded = min(opportunities, SEEDED)
    seed(crm, accounts=max(300, seeded // 5), opportunities=seeded, today=TODAY)
    store = Store(f"sqlite:///{workdir}/store.db")
    store.migrate()
    live, _ = rulebook_from_files(read_folder(ROOT / "rules"))
    assert live
    store.versions.publish(read_folder(ROOT / "rules"), who="bench")
    started = time.perf_counter()
    columns = [column.name for column in StateRow.__table__.columns]
    now = datetime.now(UTC)
    for page in crm.iter_opportunities(OpportunityQuery(page_size=5000)):
        rows = [_entry(live, record).state_row(now) for record in page]
        with store.engine.begin() as connection:  # the state table only: bulk, fast
            connection.execute(
                insert(StateRow), [{c: getattr(row, c) for c in columns} for row in rows]
            )
    _repeat(store, opportunities // seeded)
    crm.close()
    store.engine.dispose()
    return time.perf_counter() - started


def _repeat(store: Store, times: int) -> None:
    """The seeded states again under new ids (``OPP-00001-c1``...), up to the size asked."""
    columns = [c.name for c in StateRow.__table__.columns if c.name != "opportunity_id"]
    listed = ", ".join(columns)
    with store.engine.begin() as connection:
        for copy in range(1, times):
            connection.exec_driver_sql(
                f"INSERT INTO opportunity_state (opportunity_id, {listed}) "
                f"SELECT opportunity_id || '-c{copy}', {listed} FROM opportunity_state "
                "WHERE opportunity_id NOT LIKE '%-c%'"
            )


def _entry(live: Rulebook, record: OpportunityRecord) -> DecisionEntry:
    facts = live.managers.resolve(live.targets.resolve(record.facts))
    decision = evaluate(facts, live.ruleset, TODAY)
    changes = plan_fields(decision, record.current)
    return DecisionEntry(
        decision,
        facts,
        changes,
        trigger="bench",
        target_list_version=live.targets.version,
        reported=reported_values(decision, record.current),
        raw_facts=record.facts,
        held=held_values(record.current, changes),
    )


def measure(workdir: str) -> dict:
    """Run one preview (in this process, which does nothing else)."""
    store = Store(f"sqlite:///{workdir}/store.db")
    files = read_folder(ROOT / "rules")
    live, _ = rulebook_from_files(files)
    text = files["strategy.yaml"].decode().replace("employees >= 1000", "employees >= 500")
    draft, _ = rulebook_from_files({**files, "strategy.yaml": text.encode()})
    assert live and draft
    started = time.perf_counter()
    with ChangeSpool() as spool:
        preview = run_preview(store, live, draft, TODAY, spool)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "opportunities": preview.opportunities,
        "changed": preview.changed,
        "seconds": seconds,
        "peak_mb": peak_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 50_000, 100_000])
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    table = Table(title="rules preview over the whole pipeline (SQLite store, 2-core machine)")
    for column in ("opportunities", "changed", "setup (pipeline)", "preview", "peak RSS"):
        table.add_column(column, justify="right")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as workdir:
            built = setup(workdir, size)
            child = subprocess.run(
                [sys.executable, __file__, "--measure", workdir],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(child.stdout)
        table.add_row(
            f"{result['opportunities']:,}",
            f"{result['changed']:,}",
            f"{built:.0f} s",
            f"{result['seconds']:.1f} s",
            f"{result['peak_mb']:.0f} MB",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
