"""A deterministic, realistic sample pipeline for the sandbox CRM.

Three teams with a manager each, four reps per team, a few hundred accounts
and opportunities shaped so the demo tells the story of the sales-leadership
articles: a good share of the business is On Strategy (target-market
manufacturing and healthcare accounts buying the Data Platform or Analytics
Cloud), reps who find the traditional products easier to sell carry several
big off-strategy deals (more than the two coaching tasks a manager should give
them at once), a few reps have stated a good reason for an off-strategy deal,
and the CRM's own target-account field marks about one account in ten.

Everything derives from ``seed`` (and ``today`` for close dates), so the same
arguments give the same pipeline; accounts do not depend on the number of
opportunities, which keeps ``rules/target_accounts.csv`` valid for any size.
Regenerate that file with ``python -m connectors.sandbox_seed targets``.
"""

from __future__ import annotations

import csv
import math
import random
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from connectors.sandbox_catalog import (
    COMPANY_SUFFIXES,
    COUNTRIES,
    EXCEPTION_REASONS,
    INDUSTRIES,
    INDUSTRY_WORDS,
    NAME_WORDS,
    STAGES,
    STRATEGIC_PRODUCTS,
    TARGET_INDUSTRIES,
    TARGET_MIN_EMPLOYEES,
    TEAMS,
    TRADITIONAL_PRODUCTS,
)
from connectors.sandbox_db import SCHEMA


@dataclass(frozen=True)
class Sample:
    """The generated pipeline, as rows for :class:`connectors.sandbox.SandboxConnector`."""

    owners: list[dict[str, Any]]
    accounts: list[dict[str, Any]]
    opportunities: list[dict[str, Any]]
    target_list: list[tuple[str, str]]  # (account id, name) for rules/target_accounts.csv


def seed(
    connector: Any,
    *,
    seed: int = 7,
    accounts: int = 300,
    opportunities: int = 600,
    today: date | None = None,
) -> bool:
    """Load the sample into an empty sandbox; return False (doing nothing) if already seeded."""
    if connector.is_seeded():
        return False
    sample = build(seed=seed, accounts=accounts, opportunities=opportunities, today=today)
    connector.add_owners(sample.owners)
    connector.add_accounts(sample.accounts)
    rows = sample.opportunities
    if "created_date" not in SCHEMA:  # a sandbox that cannot hold created dates yet
        rows = [{k: v for k, v in row.items() if k != "created_date"} for row in rows]
    connector.add_opportunities(rows)
    return True


def build(
    *, seed: int = 7, accounts: int = 300, opportunities: int = 600, today: date | None = None
) -> Sample:
    """Generate the whole sample without touching a database."""
    today = today or date.today()
    owners = make_owners()
    account_rows = make_accounts(random.Random(f"{seed}:accounts"), accounts)
    targets = pick_target_list(random.Random(f"{seed}:targets"), account_rows)
    flag_crm_targets(random.Random(f"{seed}:crm-flags"), account_rows, targets)
    reps = [o for o in owners if o["manager_id"]]
    opps = make_opportunities(
        random.Random(f"{seed}:opportunities"), opportunities, account_rows, reps, today
    )
    listed = [(a["id"], a["name"]) for a in account_rows if a["id"] in targets]
    return Sample(owners, account_rows, opps, listed)


def target_list(*, seed: int = 7, accounts: int = 300) -> list[tuple[str, str]]:
    """The (id, name) pairs shipped in rules/target_accounts.csv for this seed."""
    return build(seed=seed, accounts=accounts, opportunities=0, today=date(2026, 1, 1)).target_list


def in_target_market(account: dict[str, Any] | None) -> bool:
    """The shipped strategy's ideal client profile, for shaping and checking the sample."""
    return bool(
        account
        and account["industry"] in TARGET_INDUSTRIES
        and account["employees"] >= TARGET_MIN_EMPLOYEES
    )


def make_owners() -> list[dict[str, Any]]:
    """Managers U-001..U-003, then four reps per team (U-004...) reporting to them."""
    owners, number = [], len(TEAMS) + 1
    for team, (manager_id, manager_name), reps in TEAMS:
        owners.append(_owner(manager_id, manager_name, "", team))
        for rep in reps:
            owners.append(_owner(f"U-{number:03d}", rep, manager_id, team))
            number += 1
    return sorted(owners, key=lambda o: o["id"])


def _owner(owner_id: str, name: str, manager_id: str, team: str) -> dict[str, Any]:
    email = name.lower().replace("'", "").replace(" ", ".") + "@example.com"
    return {"id": owner_id, "name": name, "email": email, "manager_id": manager_id, "team": team}


def make_accounts(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Companies with log-normal head counts (20..50,000) and revenue to match."""
    rows, names = [], set()
    for number in range(1, count + 1):
        industry = _weighted(rng, {k: v[0] for k, v in INDUSTRIES.items()})
        name = _company_name(rng, industry, names)
        employees = int(min(50_000, max(20, rng.lognormvariate(math.log(900), 1.5))))
        revenue = employees * INDUSTRIES[industry][1] * rng.uniform(0.6, 1.4)
        rows.append(
            {
                "id": f"ACC-{number:04d}",
                "name": name,
                "industry": industry,
                "employees": employees,
                "annual_revenue": round(revenue, -3),
                "country": _weighted(rng, {k: v[0] for k, v in COUNTRIES.items()}),
                "domain": _domain(name),
                "target_flag": False,
            }
        )
    return rows


def _company_name(rng: random.Random, industry: str, taken: set[str]) -> str:
    while True:
        words = [rng.choice(NAME_WORDS), rng.choice(INDUSTRY_WORDS[industry])]
        name = " ".join([*words, rng.choice(COMPANY_SUFFIXES)]).strip()
        if name not in taken:
            taken.add(name)
            return name


def _domain(name: str) -> str:
    words = [w for w in name.lower().replace(".", "").split() if w not in ("inc", "corp", "llc")]
    return "".join(words[:2]) + ".com"


def pick_target_list(rng: random.Random, accounts: list[dict[str, Any]]) -> set[str]:
    """~60 named accounts: mostly the ideal client profile, plus some strategic logos."""
    fits = [a["id"] for a in accounts if in_target_market(a)]
    large_others = [a["id"] for a in accounts if not in_target_market(a) and a["employees"] >= 5000]
    chosen = rng.sample(fits, min(len(fits), len(accounts) * 3 // 20))
    chosen += rng.sample(large_others, min(len(large_others), len(accounts) // 20))
    return set(chosen)


def flag_crm_targets(rng: random.Random, accounts: list[dict[str, Any]], listed: set[str]) -> None:
    """~10% of accounts carry the CRM's own flag, overlapping the list only in part."""
    on_list = sorted(listed)
    off_list = [a["id"] for a in accounts if a["id"] not in listed]
    flagged = set(rng.sample(on_list, min(len(on_list), len(accounts) // 15)))
    flagged |= set(rng.sample(off_list, min(len(off_list), len(accounts) // 30)))
    for account in accounts:
        account["target_flag"] = account["id"] in flagged


HISTORY_WEEKS = 39  # about nine months of deals, created week by week
BASELINE_WEEKS = 13  # the strategy starts to take hold after these first weeks
TEAM_LIFT = {"Enterprise West": 0.45, "Enterprise East": 0.2, "Mid-Market": 0.15}
LAGGARD_LEANING = 0.2
STANDOUTS = {"Priya Raman": 0.3, "Kevin Park": 0.3}  # extra discipline, and they win it
LAGGARDS = ("Elena Petrova", "Jamal Wright")  # keep selling whatever they can


def make_opportunities(
    rng: random.Random,
    count: int,
    accounts: list[dict[str, Any]],
    reps: list[dict[str, Any]],
    today: date,
) -> list[dict[str, Any]]:
    """Nine months of deals, created week by week, most still open near the end.

    The story the insights should tell: during the first 13 weeks (the baseline)
    each rep leans on the target market as they always did; then the strategy
    takes hold, fastest in Enterprise West; Priya Raman and Kevin Park stand out
    (more on-strategy pipeline, and they win it); Elena Petrova and Jamal Wright
    keep selling whatever they can (red flags).
    """
    fits = [a for a in accounts if in_target_market(a)]
    others = [a for a in accounts if not in_target_market(a)]
    base = {r["id"]: rng.uniform(0.3, 0.5) for r in reps}
    start = today - timedelta(weeks=HISTORY_WEEKS)
    rows = []
    for number in range(1, count + 1):
        rep = rng.choice(reps)
        created = start + timedelta(days=int(HISTORY_WEEKS * 7 * rng.random() ** 0.8))
        ramp = _ramp(start, created)
        pool = fits if rng.random() < _discipline(rep, base[rep["id"]], ramp) else others
        account = rng.choice(pool) if pool and number % 250 != 0 else None  # a few orphans
        rows.append(_opportunity(rng, number, account, rep, (created, ramp), today))
    return rows


def _ramp(start: date, created: date) -> float:
    """0 during the baseline, then rising to 1 by today: the strategy taking hold."""
    weeks = (created - start).days / 7 - BASELINE_WEEKS
    return max(0.0, min(1.0, weeks / (HISTORY_WEEKS - BASELINE_WEEKS)))


def _discipline(rep: dict[str, Any], base: float, ramp: float) -> float:
    """How likely this rep's next deal is in the target market."""
    if rep["name"] in LAGGARDS:
        return LAGGARD_LEANING
    lift = TEAM_LIFT.get(rep["team"], 0.1) + STANDOUTS.get(rep["name"], 0.0)
    return min(0.95, base + lift * ramp + STANDOUTS.get(rep["name"], 0.0) / 2)


def _opportunity(
    rng: random.Random,
    number: int,
    account: dict[str, Any] | None,
    rep: dict,
    when: tuple[date, float],
    today: date,
) -> dict[str, Any]:
    created, ramp = when
    products = _products(rng, in_target_market(account), ramp) if account else []
    close = created + timedelta(days=rng.randint(14, 150))
    on_strategy = in_target_market(account) and any(p in STRATEGIC_PRODUCTS for p in products)
    stage = _stage(rng, close, today, _win_chance(rep, on_strategy))
    amount = _amount(rng, rep["team"], products)
    return {
        "id": f"OPP-{number:05d}",
        "name": _deal_name(rng, account, products),
        "account_id": account["id"] if account else None,
        "owner_id": rep["id"],
        "amount": amount,
        "currency": COUNTRIES[account["country"]][1] if account else "USD",
        "stage": stage,
        "probability": STAGES[stage],
        "close_date": close.isoformat(),
        "created_date": created.isoformat(),
        "is_closed": stage.startswith("Closed"),
        "is_won": stage == "Closed Won",
        "type": "Existing Business" if "Support Renewal" in products else "New Business",
        "exception_reason": _exception_reason(rng, account, products),
        "products": [(p, 1, round(amount / max(1, len(products)), 2)) for p in products],
    }


def _win_chance(rep: dict[str, Any], on_strategy: bool) -> float:
    """On-strategy deals win more often; the standouts win them more often still."""
    if not on_strategy:
        return 0.33
    return 0.62 if rep["name"] in STANDOUTS else 0.45


def _products(rng: random.Random, target_market: bool, ramp: float = 1.0) -> list[str]:
    """Strategic products sell mostly into the target market, more so as the strategy
    takes hold; elsewhere the old suite wins."""
    if rng.random() < (0.55 + 0.3 * ramp if target_market else 0.3):
        chosen = [rng.choice(STRATEGIC_PRODUCTS)]
        if rng.random() < 0.25:
            chosen = list(STRATEGIC_PRODUCTS)
        if rng.random() < 0.4:
            chosen.append("Professional Services")
        return chosen
    return rng.sample(TRADITIONAL_PRODUCTS, rng.choice((1, 1, 2)))


def _stage(rng: random.Random, close: date, today: date, win_chance: float) -> str:
    """A close date in the past is closed (won or lost); near ones sit in later stages."""
    days_to_close = (close - today).days
    if days_to_close < 0:
        return "Closed Won" if rng.random() < win_chance else "Closed Lost"
    if days_to_close < 45:
        weights = {"Qualification": 1, "Needs Analysis": 2, "Proposal": 4, "Negotiation": 4}
    elif days_to_close < 120:
        weights = {"Prospecting": 2, "Qualification": 4, "Needs Analysis": 4, "Proposal": 2}
    else:
        weights = {"Prospecting": 5, "Qualification": 3, "Needs Analysis": 1}
    return _weighted(rng, weights)


def _amount(rng: random.Random, team: str, products: list[str]) -> float:
    """Log-normal deal sizes, 5k..1.5M; enterprise and platform deals run larger."""
    scale = 0.45 if team == "Mid-Market" else 1.3
    if any(p in STRATEGIC_PRODUCTS for p in products):
        scale *= 1.3
    value = rng.lognormvariate(math.log(65_000 * scale), 1.0)
    return float(round(min(1_500_000, max(5_000, value)), -2))


def _deal_name(rng: random.Random, account: dict[str, Any] | None, products: list[str]) -> str:
    who = " ".join(account["name"].split()[:2]) if account else "Unassigned lead"
    what = products[0] if products else "Discovery"
    kind = rng.choice(("expansion", "new business", "pilot", "upgrade", "rollout"))
    if what == "Support Renewal":
        return f"{who} - Support Renewal"
    return f"{who} - {what} {kind}"


def _exception_reason(rng: random.Random, account: dict | None, products: list[str]) -> str:
    """A handful of reps state a good reason for an off-strategy deal."""
    on_strategy = in_target_market(account) and any(p in STRATEGIC_PRODUCTS for p in products)
    if on_strategy or rng.random() >= 0.05:
        return ""
    return rng.choice(EXCEPTION_REASONS)


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def write_target_csv(out: Any, *, seed: int = 7, accounts: int = 300) -> None:
    """Write rules/target_accounts.csv (columns crm,account_id,name) for this seed."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["crm", "account_id", "name"])
    for account_id, name in target_list(seed=seed, accounts=accounts):
        writer.writerow(["sandbox", account_id, name])


if __name__ == "__main__":
    if sys.argv[1:] != ["targets"]:
        sys.exit("usage: python -m connectors.sandbox_seed targets > rules/target_accounts.csv")
    write_target_csv(sys.stdout)
