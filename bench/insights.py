"""How long does the full insights report take? ``python bench/insights.py``.

Fills a SQLite store's current-state table with N opportunities (default
100,000: 12 teams of 8 reps, a year of created and closed dates, one or two
products each, 10% decided under an older ruleset so they are judged again) and
optionally H decisions of history per opportunity, then times:

- the first report ever (reads every row's facts, judges the stale ones, keeps the
  judgements in the store) and the first report of the next process (``onstrategy
  report`` is one: it starts from the kept judgements);
- the next reports (the judgements are cached per live version: one narrow query
  and the arithmetic): the goal is <= 1 s at 100,000 opportunities;
- ``GET /api/report`` through the Flask app (p50, p95 of R requests): goal <= 300 ms.

The goal for cost against history: the same warm figure with ``--history 0`` and
``--history 3``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integration.app.factory import create_app  # noqa: E402
from integration.reports.service import Ask, Insights  # noqa: E402
from integration.runtime import Runtime  # noqa: E402
from integration.settings import Settings  # noqa: E402
from integration.store.database import Store  # noqa: E402
from integration.store.models import DecisionRow, StateRow  # noqa: E402

TODAY = date(2026, 11, 26)
INDUSTRIES = ("Manufacturing", "Healthcare", "Retail", "Technology", "Energy", "Education")
PRODUCTS = ("Data Platform", "Analytics Cloud", "Support Renewal", "On-Prem License")


def _row(rng: random.Random, number: int, version: str, targets: str) -> dict:
    team = number % 12
    owner = f"U-{team:02d}{number % 8}"
    created = TODAY - timedelta(days=rng.randint(0, 365))
    close = created + timedelta(days=rng.randint(10, 120))
    closed = close < TODAY
    won = closed and rng.random() < 0.4
    industry = rng.choice(INDUSTRIES)
    products = rng.sample(PRODUCTS, rng.choice((1, 2)))
    on = industry in INDUSTRIES[:2] and any(p in PRODUCTS[:2] for p in products)
    stage = (
        ("Closed Won" if won else "Closed Lost")
        if closed
        else rng.choice(("Prospecting", "Proposal", "Negotiation"))
    )
    opportunity = {
        "id": f"OPP-{number:06d}",
        "name": f"Deal {number}",
        "amount": rng.randint(5, 900) * 1000.0,
        "stage": stage,
        "probability": {"Prospecting": 10, "Proposal": 60}.get(stage, 80),
        "close_date": close.isoformat(),
        "created_date": created.isoformat(),
        "is_closed": closed,
        "is_won": won,
    }
    account = {"id": f"ACC-{number % 20000:05d}", "industry": industry, "employees": 5000}
    facts = {
        "crm": "sandbox",
        "opportunity": opportunity,
        "account": account,
        "owner": {
            "id": owner,
            "name": f"Rep {owner}",
            "team": f"Team {team}",
            "manager_id": f"M-{team:02d}",
        },
        "products": products,
    }
    return {
        "crm": "sandbox",
        "opportunity_id": opportunity["id"],
        "facts": json.dumps(facts),
        "crm_values": json.dumps({"comp_eligible": on}),
        "fit": "On Strategy" if on else "Off Strategy",
        "fit_rule": "",
        "warning": "",
        "comp_eligible": on,
        "frozen": False,
        "ruleset_version": version if number % 10 else "older000000",
        "target_list_version": targets,
        "name": opportunity["name"],
        "amount": opportunity["amount"],
        "stage": stage,
        "probability": opportunity["probability"],
        "close_date": opportunity["close_date"],
        "created_date": opportunity["created_date"],
        "is_closed": closed,
        "is_won": won,
        "account_id": account["id"],
        "industry": industry,
        "owner_id": owner,
        "owner_name": f"Rep {owner}",
        "team": f"Team {team}",
        "manager_id": f"M-{team:02d}",
        "decided_at": datetime(2026, 11, 1, tzinfo=UTC),
    }


def fill(store: Store, runtime: Runtime, count: int, history: int) -> None:
    rulebook = runtime.rulebook()
    rng = random.Random(11)
    rows = [_row(rng, n, rulebook.version, rulebook.targets.version) for n in range(count)]
    with store.engine.begin() as connection:
        for start in range(0, count, 5000):
            connection.execute(insert(StateRow), rows[start : start + 5000])
        for round_ in range(history):
            decided = [_decision(row, round_) for row in rows]
            for start in range(0, count, 5000):
                connection.execute(insert(DecisionRow), decided[start : start + 5000])


def _decision(row: dict, round_: int) -> dict:
    keys = (
        "crm",
        "opportunity_id",
        "fit",
        "fit_rule",
        "comp_eligible",
        "ruleset_version",
        "amount",
        "stage",
        "close_date",
        "owner_id",
        "owner_name",
        "team",
    )
    return {
        **{k: row[k] for k in keys},
        "trigger": "bench",
        "reason": "",
        "decided_at": datetime(2026, 10, 1 + round_, tzinfo=UTC),
    }


def timed(call, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def _recomputed(runtime: Runtime, ask: Ask) -> None:
    runtime.insights.clear_reports()
    runtime.insights.report(ask)


def _api_recomputed(runtime: Runtime, client: object) -> None:
    runtime.insights.clear_reports()
    client.get("/api/report?status=all").get_json()  # type: ignore[attr-defined]


def run(count: int, history: int, requests: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as workdir:
        store = Store(f"sqlite:///{workdir}/store.db")
        store.migrate()
        settings = Settings(
            rules_dir=str(ROOT / "rules"), database_url=store.url, crms=("hubspot",)
        )
        runtime = Runtime(settings, store=store, today=lambda: TODAY)
        fill(store, runtime, count, history)
        cold = timed(lambda: runtime.insights.report(Ask()), 1)[0]
        process = timed(lambda: Insights(store, runtime.rulebook, runtime.today).report(Ask()), 1)[
            0
        ]
        warm = timed(lambda: _recomputed(runtime, Ask(status="all")), 5)
        client = create_app(settings, runtime=runtime).test_client()
        fresh = timed(lambda: _api_recomputed(runtime, client), max(5, requests // 4))
        api = timed(lambda: client.get("/api/report?status=all").get_json(), requests)
        store.engine.dispose()
    return {
        "cold": cold,
        "process": process,
        "warm": statistics.median(warm),
        "api_fresh_p50": statistics.median(fresh),
        "api_p50": statistics.median(api),
        "api_p95": statistics.quantiles(api, n=20)[18] if len(api) >= 20 else max(api),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=0, help="decisions per opportunity")
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    figures = run(args.opportunities, args.history, args.requests)
    table = Table(
        title=f"Insights at {args.opportunities:,} opportunities, "
        f"{args.history * args.opportunities:,} decisions of history"
    )
    columns = (
        "first report (s)",
        "next process (s)",
        "report recomputed, median (s)",
        "API recomputed, p50 (ms)",
        "API p50 (ms)",
        "API p95 (ms)",
    )
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(
        f"{figures['cold']:.2f}",
        f"{figures['process']:.2f}",
        f"{figures['warm']:.2f}",
        f"{figures['api_fresh_p50'] * 1000:.0f}",
        f"{figures['api_p50'] * 1000:.0f}",
        f"{figures['api_p95'] * 1000:.0f}",
    )
    Console().print(table)
    started = time.perf_counter()
    sum(range(10**7))
    Console().print(
        f"CPU check: sum(range(10**7)) took {time.perf_counter() - started:.2f} s "
        "(about 0.2 s on an idle core; more means the machine was shared)."
    )


if __name__ == "__main__":
    main()
