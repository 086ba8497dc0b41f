"""Benchmark a target-list change: ``python bench/target_sync.py [--crm both] [--scaling]``.

The scenario the compensation issue is about: sales operations adds 20,000
accounts to ``target_accounts.csv`` and every open opportunity of those accounts
must have its comp-eligibility flag brought in step, in Salesforce or HubSpot.

For each CRM this builds a fake org/portal (``bench/fake_orgs.py``) of
``--accounts`` accounts and ``--opportunities`` opportunities, a copy of
``rules/`` in a temp dir and a SQLite store there, and a :class:`Runtime` whose
connector talks to the fake over HTTP (``responses`` for Salesforce, a local
server for HubSpot). Then, through the real pipeline:

1. *baseline*: ``sync_targets`` with none of the accounts on the list. This is
   the first sync (every open opportunity is evaluated and tagged, coaching
   tasks created); it sets the CRM's current values and remembers the list.
2. *add* (measured): all ``--accounts`` accounts are added to the CSV and
   ``sync_targets`` runs again: every open or recently closed opportunity of
   them flips ``comp_eligible`` to true. Wall time and API calls are taken here.
3. *remove* (measured for memory): the CSV goes back to the baseline, the same
   20,000 accounts flip back, under ``tracemalloc``, which slows Python down and
   so is kept out of the wall time of step 2.

Wall times include the fake's work (building JSON answers) and the store's
(SQLite: one decision row per opportunity, plus write rows). HubSpot's local
rate limit (90 calls per 10 s) is lifted so the run measures our code; the
"at HubSpot's limit" row says how long the same calls take in production.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import responses  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench import fake_orgs  # noqa: E402
from connectors.hubspot import HubSpotConnector  # noqa: E402
from connectors.hubspot_api import HubSpotApi  # noqa: E402
from connectors.ratelimit import TokenBucket  # noqa: E402
from integration.cli.store import publish_target_list  # noqa: E402
from integration.domain.fields import FieldMap  # noqa: E402
from integration.pipeline.sweep import sync_targets  # noqa: E402
from integration.runtime import Runtime  # noqa: E402
from integration.settings import Settings  # noqa: E402
from integration.store.database import Store  # noqa: E402

FREEZE_FILTERED = ("frozen",)  # deals the sweep's query leaves out (closed before the freeze)
HUBSPOT_CALLS_PER_SECOND = 9.0  # the default budget's sustained rate (100 per 10 s, 10 a burst)


@dataclass
class Run:
    """One measured ``sync_targets`` call."""

    label: str
    seconds: float
    evaluated: int
    changed: int
    calls: Counter[str]
    fake_calls: Counter[str]
    peak_bytes: int = 0


@dataclass
class Bench:
    """A CRM under test: the fake, the runtime and where the rules live."""

    crm: str
    book: fake_orgs.Book
    runtime: Runtime
    rules: Path
    fake_log: Counter[str] = field(default_factory=Counter)
    cleanup: list[Any] = field(default_factory=list)
    recorder: Any = None  # the ``responses`` mock, whose call list must not grow either

    @property
    def connector(self) -> Any:
        return self.runtime.connector(self.crm)


# -- setup ----------------------------------------------------------------


def write_rules(workdir: Path, crm: str, managers: list[tuple[str, str]]) -> Path:
    """A copy of the shipped rules folder, with the managers this CRM needs."""
    rules = workdir / "rules"
    shutil.copytree(ROOT / "rules", rules, ignore=shutil.ignore_patterns("tests"))
    with (rules / "managers.csv").open("a", newline="") as out:
        csv.writer(out).writerows((crm, rep, manager) for rep, manager in managers)
    write_targets(rules, crm, [])
    return rules


def write_targets(rules: Path, crm: str, account_ids: list[str]) -> None:
    """The shipped sandbox rows plus ``account_ids`` for ``crm``, in the CRM's id form."""
    shipped = (ROOT / "rules" / "target_accounts.csv").read_text().rstrip("\n").splitlines()
    rows = [f"{crm},{aid},Account {n}" for n, aid in enumerate(account_ids)]
    (rules / "target_accounts.csv").write_text("\n".join([*shipped, *rows]) + "\n")


def runtime_for(workdir: Path, rules: Path, crm: str, connector: Any) -> Runtime:
    store = Store(f"sqlite:///{workdir / 'store.db'}")
    store.migrate()
    settings = Settings(rules_dir=str(rules), database_url=store.url, crms=(crm,))
    return Runtime(settings, store=store, redis=None, connectors={crm: connector})


def salesforce_bench(workdir: Path, accounts: int, opportunities: int) -> Bench:
    """The org behind ``responses``; the mock stays active until ``close``."""
    book = fake_orgs.build_salesforce(accounts, opportunities)
    mock = responses.RequestsMock(assert_all_requests_are_fired=False)
    mock.start()
    book.fake.register(mock)
    rules = write_rules(workdir, "salesforce", [])
    bench = Bench(
        "salesforce", book, runtime_for(workdir, rules, "salesforce", book.fake.connector()), rules
    )
    bench.cleanup.append(lambda: (mock.stop(), mock.reset()))
    bench.recorder = mock
    return bench


def hubspot_bench(workdir: Path, accounts: int, opportunities: int) -> Bench:
    """The portal on a local port; the connector's rate limit lifted (see module doc)."""
    book = fake_orgs.build_hubspot(accounts, opportunities)
    unlimited = {name: TokenBucket(10**9, 1.0, burst=10**9) for name in ("general", "search")}
    api = HubSpotApi.create("bench-token", book.fake.url, buckets=unlimited)
    connector = HubSpotConnector(api, FieldMap.for_crm("hubspot"))
    rules = write_rules(workdir, "hubspot", fake_orgs.hubspot_managers(book))
    bench = Bench("hubspot", book, runtime_for(workdir, rules, "hubspot", connector), rules)
    bench.cleanup.append(book.fake.stop)
    return bench


BUILDERS = {"salesforce": salesforce_bench, "hubspot": hubspot_bench}


# -- running --------------------------------------------------------------


def drain_fake_log(bench: Bench) -> None:
    """Count the fake's recorded requests and forget them, so the log does not grow."""
    fake = bench.book.fake
    if bench.crm == "salesforce":
        bench.fake_log.update(_sf_kind(call) for call in fake.calls)
        fake.calls.clear()
        if bench.recorder is not None:
            bench.recorder.calls.reset()
    else:
        bench.fake_log.update(f"{r.method} {_route(r.path)}" for r in fake.requests)
        fake.requests.clear()


def _sf_kind(call: Any) -> str:
    """Task-state queries are coaching work, not opportunity reads: name them apart."""
    return "query (Task)" if "FROM Task" in call.params.get("q", "") else call.kind


def _route(path: str) -> str:
    """``/crm/v3/objects/deals/batch/read`` -> ``deals/batch/read`` (ids dropped)."""
    parts = [p for p in path.split("/") if p and not p.isdigit()]
    return "/".join(parts[2:] if parts[:1] == ["crm"] else parts)


def timed_sync(bench: Bench, label: str, traced: bool = False) -> Run:
    """One ``sync_targets``, with API calls counted by the connector and by the fake."""
    drain_fake_log(bench)
    bench.fake_log.clear()
    before = Counter(bench.connector.api_calls)
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    _, outcome = sync_targets(bench.runtime, bench.crm, progress=lambda n: drain_fake_log(bench))
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if traced else 0
    if traced:
        tracemalloc.stop()
    drain_fake_log(bench)
    calls = Counter(bench.connector.api_calls)
    calls.subtract(before)
    evaluated, changed = (outcome.evaluated, outcome.changed) if outcome else (0, 0)
    return Run(label, seconds, evaluated, changed, +calls, Counter(bench.fake_log), peak)


@dataclass(frozen=True)
class Book:
    """The size of what was measured, kept after the fake is gone."""

    accounts: int
    opportunities: int
    reps: int
    open_tasks: int


def scenario(
    crm: str, accounts: int, opportunities: int, memory: bool = True
) -> tuple[list[Run], Book]:
    """Baseline sync, then the measured add (and, with ``memory``, the traced remove)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{crm}-") as tmp:
        started = time.perf_counter()
        bench = BUILDERS[crm](Path(tmp), accounts, opportunities)
        built = time.perf_counter() - started
        try:
            runs = [Run("build fake", built, 0, 0, Counter(), Counter())]
            runs.append(timed_sync(bench, "baseline (first sync)"))
            write_targets(bench.rules, crm, bench.book.account_ids)
            publish_list(bench)
            runs.append(timed_sync(bench, f"add {accounts:,} accounts"))
            if memory:
                write_targets(bench.rules, crm, [])
                publish_list(bench)
                runs.append(timed_sync(bench, f"remove {accounts:,} (traced)", traced=True))
            book = Book(accounts, opportunities, bench.book.reps, _open_tasks(bench))
        finally:
            for close in bench.cleanup:
                close()
    return runs, book


def publish_list(bench: Bench) -> None:
    """Make the folder's target list live, as ``onstrategy targets sync`` does first
    (a sync evaluates under the live version, not the working copy)."""
    quiet = Console(file=io.StringIO())
    if not publish_target_list(bench.runtime, quiet, dry_run=False):
        raise SystemExit("the target list was not published")


def _open_tasks(bench: Bench) -> int:
    return sum(1 for t in bench.runtime.store.tasks.all_tasks(bench.crm) if t.status == "open")


# -- the minimum the batch sizes allow -------------------------------------


def minimum_calls(crm: str, book: Book, run: Run) -> dict[str, int]:
    """Fewest calls the CRM's batch sizes allow for this run's reads and writes.

    Salesforce: one SOQL row per opportunity (relationships and the product
    subquery inline), 2,000 rows per page; sObject Collections of 200.
    HubSpot, batch reads and updates of 100, association reads of 1,000:
    company->deal associations, every deal of those companies (open or not: the
    filter is ours), deal->line-item associations and line items of the deals
    kept, each company once; updates.
    Both: the end-of-sweep coaching refresh reads the open tasks' states.
    """
    up = math.ceil
    accounts, deals, open_tasks = book.accounts, book.opportunities, book.open_tasks
    if crm == "salesforce":
        reads = up(run.evaluated / 2000)
        return {"reads": reads, "writes": up(run.changed / 200), "tasks": up(open_tasks / 200)}
    items = round(run.evaluated * 1.5)  # one or two products per deal, alternating
    associations = up(accounts / 1000) + up(run.evaluated / 1000)
    reads = associations + up(accounts / 100) + up(deals / 100) + up(items / 100)
    return {"reads": reads, "writes": up(run.changed / 100), "tasks": up(open_tasks / 100)}


READ_KINDS = {
    "query",
    "query_more",
    "deals.read",
    "companies.read",
    "line_items.read",
    "associations.companies.deals",
    "associations.deals.companies",
    "associations.deals.line_items",
}
WRITE_KINDS = {"update", "deals.update"}


def split_calls(calls: Counter[str]) -> dict[str, int]:
    """Reads, writes and the rest (coaching: task states, creates, closes)."""
    reads = sum(n for k, n in calls.items() if k in READ_KINDS)
    writes = sum(n for k, n in calls.items() if k in WRITE_KINDS)
    return {"reads": reads, "writes": writes, "tasks": sum(calls.values()) - reads - writes}


# -- reporting ------------------------------------------------------------


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB" if size else "-"


def runs_table(crm: str, runs: list[Run]) -> Table:
    table = Table(title=f"{crm}: target-list sync through the real pipeline")
    for name in ("step", "wall time", "evaluated", "changed", "API calls", "peak (tracemalloc)"):
        table.add_column(name, justify="left" if name == "step" else "right")
    for run in runs:
        calls = f"{sum(run.calls.values()):,}"
        table.add_row(
            run.label,
            f"{run.seconds:,.1f} s",
            f"{run.evaluated:,}",
            f"{run.changed:,}",
            calls,
            _mb(run.peak_bytes),
        )
    return table


def calls_table(crm: str, run: Run, book: Book) -> Table:
    """The measured run's calls by kind, against the minimum the batch sizes allow."""
    seen = run.fake_calls if crm == "salesforce" else run.calls
    actual, least = split_calls(seen), minimum_calls(crm, book, run)
    table = Table(title=f"{crm}: API calls of '{run.label}' ({run.changed:,} changed)")
    for name in ("part", "by kind", "calls", "minimum", "ratio"):
        table.add_column(name, justify="left" if name in ("part", "by kind") else "right")
    for part in ("reads", "writes", "tasks"):
        kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(seen.items()) if _part(k) == part)
        table.add_row(
            part, kinds, f"{actual[part]:,}", f"{least[part]:,}", _ratio(actual[part], least[part])
        )
    total, floor = sum(actual.values()), sum(least.values())
    table.add_row("total", "", f"{total:,}", f"{floor:,}", _ratio(total, floor), style="bold")
    if crm == "hubspot":
        minutes = total / HUBSPOT_CALLS_PER_SECOND / 60
        table.add_row("at HubSpot's limit", "90 calls / 10 s", f"{minutes:,.1f} min", "", "")
    return table


def _part(kind: str) -> str:
    return "reads" if kind in READ_KINDS else "writes" if kind in WRITE_KINDS else "tasks"


def _ratio(actual: int, least: int) -> str:
    if not least:
        return "-" if not actual else "inf"
    ratio = actual / least
    return f"[{'green' if ratio <= 1.1 else 'red'}]{ratio:.2f}x[/]"


def scaling_table(crm: str, accounts: int, sizes: list[int]) -> Table:
    """Peak memory of the traced run at several book sizes: flat means streaming."""
    table = Table(title=f"{crm}: memory against the number of opportunities")
    for name in ("opportunities", "accounts changed", "evaluated", "wall time (traced)", "peak"):
        table.add_column(name, justify="right")
    for size in sizes:
        runs, _ = scenario(crm, min(accounts, size // 5), size)
        run = runs[-1]
        table.add_row(
            f"{size:,}",
            f"{min(accounts, size // 5):,}",
            f"{run.evaluated:,}",
            f"{run.seconds:,.1f} s",
            _mb(run.peak_bytes),
        )
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crm", choices=("salesforce", "hubspot", "both"), default="both")
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--opportunities", type=int, default=2_000)
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="also run at 1/4, 1/2 and all of --opportunities for memory",
    )
    args = parser.parse_args(argv)
    console = Console()
    for crm in ("salesforce", "hubspot") if args.crm == "both" else (args.crm,):
        runs, book = scenario(crm, args.accounts, args.opportunities)
        console.print(runs_table(crm, runs))
        console.print(calls_table(crm, runs[2], book))
        if args.scaling:
            sizes = [args.opportunities // 4, args.opportunities // 2, args.opportunities]
            console.print(scaling_table(crm, args.accounts, sorted(set(sizes))))


if __name__ == "__main__":
    main()
