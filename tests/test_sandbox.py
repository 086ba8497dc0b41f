"""The sandbox CRM behaves like a CRM, and its seed is the promised demo pipeline."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connectors.base import Connector, FieldUpdate, OpportunityQuery, TaskClose, TaskSpec
from connectors.sandbox import SandboxConnector, default_path
from connectors.sandbox_catalog import STRATEGIC_PRODUCTS
from connectors.sandbox_seed import build, in_target_market, seed, target_list

TODAY = date(2026, 11, 26)
RULES = Path(__file__).resolve().parent.parent / "rules"


class Clock:
    """A hand-driven clock so last_modified is predictable."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, minutes: int = 1) -> None:
        self.now += timedelta(minutes=minutes)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def crm(clock: Clock) -> SandboxConnector:
    sandbox = SandboxConnector(":memory:", clock=clock)
    sandbox.add_owners(
        [
            {"id": "U-001", "name": "Margaret Chen", "email": "m@example.com", "team": "East"},
            {
                "id": "U-004",
                "name": "Sean O'Brien",
                "email": "s@example.com",
                "manager_id": "U-001",
                "team": "East",
            },
        ]
    )
    sandbox.add_accounts(
        [
            {
                "id": "ACC-0001",
                "name": "Keystone Packaging",
                "industry": "Manufacturing",
                "employees": 5000,
                "target_flag": True,
            },
            {"id": "ACC-0002", "name": "Summit Home Goods", "industry": "Retail", "employees": 300},
        ]
    )
    for n in range(1, 8):
        closed = n >= 6
        sandbox.add_opportunity(
            f"OPP-{n:05d}",
            name=f"Deal {n}",
            account_id="ACC-0001" if n % 2 else "ACC-0002",
            owner_id="U-004",
            amount=1000.0 * n,
            stage="Closed Won" if closed else "Proposal",
            probability=100 if closed else 60,
            is_closed=closed,
            is_won=closed,
            close_date=f"2026-0{n}-15",
            products=["Data Platform"] if n == 1 else [],
        )
    return sandbox


def test_is_a_connector(crm: SandboxConnector) -> None:
    assert isinstance(crm, Connector)
    assert crm.name == "sandbox"


def test_read_keeps_the_given_order_and_leaves_out_missing_ids(crm: SandboxConnector) -> None:
    records = crm.read_opportunities(["OPP-00003", "OPP-99999", "OPP-00001"])
    assert [r.id for r in records] == ["OPP-00003", "OPP-00001"]
    assert crm.api_calls["read_opportunities"] == 1


def test_read_maps_facts_and_current_values(crm: SandboxConnector) -> None:
    (record,) = crm.read_opportunities(["OPP-00001"])
    facts = record.facts
    assert facts.crm == "sandbox"
    assert facts.account.name == "Keystone Packaging"
    assert facts.account.crm_target_flag is True
    assert facts.account.on_target_list is False  # resolved later from list + flag
    assert facts.owner.name == "Sean O'Brien"
    assert facts.owner.manager_id == "U-001"
    assert facts.products == ("Data Platform",)
    assert record.current == {"fit": None, "reason": None, "warning": None, "comp_eligible": None}
    assert record.modified_at.startswith("2026-11-01T09:00:00")


def test_missing_account_and_owner_are_null_safe(crm: SandboxConnector) -> None:
    crm.add_opportunity("OPP-00100", name="Orphan")
    (record,) = crm.read_opportunities(["OPP-00100"])
    assert record.facts.account.industry == ""
    assert record.facts.owner.id == ""
    assert record.facts.products == ()


def _ids(crm: SandboxConnector, **criteria) -> list[list[str]]:
    return [[r.id for r in page] for page in crm.iter_opportunities(OpportunityQuery(**criteria))]


def test_iter_pages_in_id_order(crm: SandboxConnector) -> None:
    pages = _ids(crm, page_size=3)
    assert pages == [
        ["OPP-00001", "OPP-00002", "OPP-00003"],
        ["OPP-00004", "OPP-00005", "OPP-00006"],
        ["OPP-00007"],
    ]


def test_iter_filters_by_account_and_open(crm: SandboxConnector) -> None:
    assert _ids(crm, account_ids=["ACC-0002"]) == [["OPP-00002", "OPP-00004", "OPP-00006"]]
    assert _ids(crm, account_ids=[]) == []
    assert _ids(crm, open_only=True) == [[f"OPP-0000{n}" for n in range(1, 6)]]


def test_iter_open_only_with_closed_after(crm: SandboxConnector) -> None:
    pages = _ids(crm, open_only=True, closed_after=date(2026, 7, 1))
    assert pages == [[f"OPP-0000{n}" for n in range(1, 6)] + ["OPP-00007"]]


def test_iter_modified_since(crm: SandboxConnector, clock: Clock) -> None:
    clock.tick(10)
    crm.update_opportunities([FieldUpdate("OPP-00004", {"fit": "On Strategy"})])
    assert _ids(crm, modified_since="2026-11-01T09:05:00+00:00") == [["OPP-00004"]]
    assert _ids(crm, modified_since="2026-11-01T09:05:00") == [["OPP-00004"]]  # naive = UTC


def test_update_writes_only_given_fields_and_bumps_last_modified(
    crm: SandboxConnector, clock: Clock
) -> None:
    crm.update_opportunities([FieldUpdate("OPP-00001", {"fit": "Off Strategy", "warning": ""})])
    clock.tick()
    results = crm.update_opportunities(
        [FieldUpdate("OPP-00001", {"comp_eligible": True}), FieldUpdate("OPP-404", {"fit": "x"})]
    )
    assert [(r.ref, r.ok) for r in results] == [("OPP-00001", True), ("OPP-404", False)]
    (record,) = crm.read_opportunities(["OPP-00001"])
    assert record.current == {
        "fit": "Off Strategy",
        "reason": None,
        "warning": "",
        "comp_eligible": True,
    }
    assert record.modified_at.startswith("2026-11-01T09:01:00")


def test_update_refuses_fields_that_are_not_outputs(crm: SandboxConnector) -> None:
    (result,) = crm.update_opportunities([FieldUpdate("OPP-00001", {"amount": 1})])
    assert not result.ok and "amount" in result.error
    assert crm.opportunity_fields("OPP-00001")["amount"] == 1000.0


def _spec(key: str, opportunity_id: str = "OPP-00001") -> TaskSpec:
    return TaskSpec(
        key, opportunity_id, "U-001", "Coach Sean O'Brien", "Review fit.", date(2026, 11, 4), "High"
    )


def test_task_lifecycle(crm: SandboxConnector) -> None:
    created = crm.create_tasks([_spec("k1"), _spec("k2"), _spec("k3"), _spec("k4", "OPP-404")])
    assert [(r.ref, r.ok, r.id) for r in created[:3]] == [
        ("k1", True, "T-000001"),
        ("k2", True, "T-000002"),
        ("k3", True, "T-000003"),
    ]
    assert not created[3].ok
    crm.complete_task("T-000002")
    crm.delete_task("T-000003")
    states = crm.task_states(["T-000001", "T-000002", "T-000003", "T-999999"])
    assert states == {
        "T-000001": "open",
        "T-000002": "completed",
        "T-000003": "deleted",
        "T-999999": "deleted",
    }
    closed = crm.close_tasks(
        [TaskClose("T-000001", "Deal is now on strategy."), TaskClose("T-000003", "gone")]
    )
    assert [r.ok for r in closed] == [True, False]
    task = crm.tasks("OPP-00001")[0]
    assert task["status"] == "Completed"
    assert task["body"] == "Review fit.\n\nDeal is now on strategy."
    assert task["subject"] == "Coach Sean O'Brien"
    assert task["assignee_id"] == "U-001" and task["due_date"] == "2026-11-04"
    assert len(crm.tasks()) == 2 and len(crm.tasks(include_deleted=True)) == 3


def test_helpers_change_the_crm_like_a_user(crm: SandboxConnector, clock: Clock) -> None:
    clock.tick(5)
    crm.set_opportunity("OPP-00002", exception_reason="Champion is moving", products=["A", "B"])
    crm.set_account_target("ACC-0002", True)
    fields = crm.opportunity_fields("OPP-00002")
    assert fields["exception_reason"] == "Champion is moving"
    assert fields["products"] == ["A", "B"]
    assert fields["last_modified"].startswith("2026-11-01T09:05:00")
    assert crm.read_opportunities(["OPP-00002"])[0].facts.account.crm_target_flag is True
    with pytest.raises(ValueError, match="nonsense"):
        crm.set_opportunity("OPP-00002", nonsense=1)
    assert crm.ensure_fields(["On Strategy"]) == []


def test_file_database_persists(tmp_path: Path) -> None:
    path = str(tmp_path / "crm.db")
    first = SandboxConnector(path)
    seed(first, accounts=20, opportunities=30, today=TODAY)
    first.close()
    assert SandboxConnector(path).is_seeded()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///data/onstrategy.db", "data/onstrategy-sandbox.db"),
        ("sqlite:////var/lib/os/store.db", "/var/lib/os/onstrategy-sandbox.db"),
        ("sqlite://", ":memory:"),
        ("postgresql://u@db/os", "onstrategy-sandbox.db"),
    ],
)
def test_default_path_sits_next_to_the_store(url: str, expected: str) -> None:
    assert default_path(url) == expected


# -- the seed ------------------------------------------------------------------------------


def test_seed_is_deterministic() -> None:
    first, second = build(today=TODAY), build(today=TODAY)
    assert first == second
    assert build(today=TODAY, seed=8).opportunities != first.opportunities


def test_seed_is_idempotent() -> None:
    sandbox = SandboxConnector()
    assert seed(sandbox, accounts=50, opportunities=80, today=TODAY) is True
    assert seed(sandbox, accounts=50, opportunities=80, today=TODAY) is False
    assert len(sandbox.accounts()) == 50
    assert sum(len(p) for p in sandbox.iter_opportunities(OpportunityQuery())) == 80


def test_seed_has_teams_with_a_manager_each() -> None:
    owners = build(today=TODAY).owners
    managers = {o["id"]: o for o in owners if not o["manager_id"]}
    reps = [o for o in owners if o["manager_id"]]
    assert len(managers) == 3 and len(reps) == 12
    for rep in reps:
        assert managers[rep["manager_id"]]["team"] == rep["team"]
        assert rep["email"].endswith("@example.com")


def test_seed_tells_the_strategy_story() -> None:
    sample = build(today=TODAY)
    accounts = {a["id"]: a for a in sample.accounts}
    on, big_off = 0, Counter()
    for opp in sample.opportunities:
        strategic = any(p[0] in STRATEGIC_PRODUCTS for p in opp["products"])
        on_strategy = in_target_market(accounts.get(opp["account_id"])) and strategic
        on += on_strategy
        if not (on_strategy or opp["exception_reason"] or opp["is_closed"]):
            big_off[opp["owner_id"]] += opp["amount"] >= 100_000
    assert 0.30 <= on / len(sample.opportunities) <= 0.45
    assert sum(1 for n in big_off.values() if n > 2) >= 3  # more than the coaching cap
    assert 8 <= sum(1 for o in sample.opportunities if o["exception_reason"]) <= 40
    assert any(o["account_id"] is None for o in sample.opportunities)
    assert 20 <= sum(a["target_flag"] for a in sample.accounts) <= 40
    assert {o["stage"] for o in sample.opportunities} >= {"Prospecting", "Closed Won"}
    closes = [date.fromisoformat(o["close_date"]) for o in sample.opportunities]
    assert min(closes) >= TODAY - timedelta(days=275) and max(closes) <= TODAY + timedelta(275)


def test_shipped_target_list_matches_the_seed() -> None:
    with (RULES / "target_accounts.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["account_id"], r["name"]) for r in rows] == target_list()
    assert {r["crm"] for r in rows} == {"sandbox"}
    accounts = {a["id"]: a for a in build(today=TODAY, opportunities=0).accounts}
    fits = sum(in_target_market(accounts[r["account_id"]]) for r in rows)
    assert 50 <= len(rows) <= 70 and fits > len(rows) / 2


def test_shipped_managers_file_names_seeded_owners() -> None:
    owners = build(today=TODAY, opportunities=0).owners
    known = {o["id"] for o in owners} | {o["email"] for o in owners}
    with (RULES / "managers.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["rep"] in known and r["manager"] in known for r in rows)


def test_shipped_strategy_matches_its_schema() -> None:
    import json

    import jsonschema
    import yaml

    schema = json.loads((RULES / "schema.json").read_text())
    strategy = yaml.safe_load((RULES / "strategy.yaml").read_text())
    jsonschema.Draft202012Validator(schema).validate(strategy)
