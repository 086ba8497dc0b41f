"""The whole pipeline on the sandbox CRM, a SQLite store and the shipped rules."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import date

import pytest

from connectors.base import FieldUpdate, OpportunityQuery, WriteResult
from connectors.sandbox import SandboxConnector
from connectors.sandbox_seed import seed
from integration.engine.rulebook import load_rulebook
from integration.pipeline.processor import Processor, RetryLater
from integration.pipeline.sweep import SweepPlan, run_sweep

TODAY = date(2026, 11, 2)  # after the shipped freeze date (2026-10-01): some deals are frozen
ALL = SweepPlan("all", OpportunityQuery())


def sweep(runtime):
    return run_sweep(runtime, "sandbox", ALL, trigger="test")


@pytest.fixture
def seeded(runtime, sandbox):
    assert seed(sandbox, opportunities=300, today=TODAY)
    return sandbox


def all_rows(sandbox: SandboxConnector) -> list[dict]:
    records = [r for page in sandbox.iter_opportunities(OpportunityQuery()) for r in page]
    return [sandbox.opportunity_fields(r.id) for r in records]


def is_frozen(row: dict) -> bool:
    return bool(row["is_closed"]) and row["close_date"] < "2026-10-01"


# -- the seeded pipeline ------------------------------------------------------------------------


def test_every_non_frozen_deal_gets_explicit_values(runtime, seeded):
    outcome = sweep(runtime)
    rows = all_rows(seeded)
    assert outcome.evaluated == len(rows) == 300
    live = [r for r in rows if not is_frozen(r)]
    assert outcome.frozen == len(rows) - len(live) > 0
    assert outcome.changed == len(live)
    for row in live:
        latest = runtime.store.latest("sandbox", row["id"])
        assert row["fit"] in ("On Strategy", "Off Strategy", "Off Strategy (Approved)")
        assert row["fit"] == latest.fit
        assert row["reason"] and row["reason"] == latest.reason
        assert row["comp_eligible"] in (0, 1)  # never left unset
        assert bool(row["comp_eligible"]) is latest.comp_eligible
        assert (row["warning"] or "") == latest.warning
    tags = Counter(r["fit"] for r in live)
    assert tags["On Strategy"] > 0 and tags["Off Strategy"] > 0
    assert any(r["warning"] for r in live)


def test_a_second_pass_writes_nothing(runtime, seeded):
    sweep(runtime)
    tasks_before = len(seeded.tasks())
    updates = seeded.api_calls["update_opportunities"]
    creates = seeded.api_calls["create_tasks"]
    again = sweep(runtime)
    assert again.changed == 0 and again.failed == 0
    assert again.coaching.created == [] and again.coaching.closed == []
    assert seeded.api_calls["update_opportunities"] == updates
    assert seeded.api_calls["create_tasks"] == creates
    assert len(seeded.tasks()) == tasks_before


def test_frozen_deals_are_never_written(runtime, seeded):
    frozen = [r for r in all_rows(seeded) if is_frozen(r)]
    assert frozen
    seeded.set_opportunity(frozen[0]["id"], fit="Legacy tag", comp_eligible=True)
    before = {r["id"]: seeded.opportunity_fields(r["id"]) for r in frozen}
    sweep(runtime)
    sweep(runtime)
    for opp_id, row in before.items():
        assert seeded.opportunity_fields(opp_id) == row
        assert seeded.tasks(opp_id) == []
        latest = runtime.store.latest("sandbox", opp_id)
        assert latest.frozen is True and latest.changed is False
        assert runtime.store.writes_for([latest.id]) == []
    # Reports count a frozen deal with the values it has in the CRM.
    assert runtime.store.latest("sandbox", frozen[0]["id"]).fit == "Legacy tag"


def test_coaching_cap_holds_for_every_rep_of_the_seed(runtime, seeded):
    sweep(runtime)
    tasks = runtime.store.tasks.all_tasks("sandbox")
    open_by_rep = Counter(t.rep_id for t in tasks if t.status == "open")
    queued_by_rep = Counter(t.rep_id for t in tasks if t.status == "queued")
    assert max(open_by_rep.values()) == 2
    assert any(queued_by_rep[rep] and open_by_rep[rep] == 2 for rep in queued_by_rep)
    assert len(seeded.tasks()) == sum(open_by_rep.values())
    for rep, count in open_by_rep.items():
        assert runtime.store.tasks.open_count("sandbox", rep) == count


# -- a small, hand-made pipeline ----------------------------------------------------------------

BIG_DEALS = {"OPP-A": 400000, "OPP-B": 300000, "OPP-C": 200000, "OPP-D": 150000}


@pytest.fixture
def crm(runtime, sandbox):
    """One rep with four big off-strategy deals (each asks for coaching) and one other."""
    sandbox.add_owners(
        [
            {"id": "U-1", "name": "Margaret Chen", "email": "m@example.com", "team": "East"},
            {
                "id": "U-4",
                "name": "Sean O'Brien",
                "email": "s@example.com",
                "manager_id": "U-1",
                "team": "East",
            },
        ]
    )
    sandbox.add_accounts(
        [
            {
                "id": "ACC-GOV",
                "name": "County of Nowhere",
                "industry": "Government",
                "employees": 6000,
            },
            {"id": "ACC-MFG", "name": "Acme Steel", "industry": "Manufacturing", "employees": 5000},
        ]
    )
    sandbox.add_opportunities(
        {
            "id": opp,
            "name": f"Deal {opp}",
            "account_id": "ACC-GOV",
            "owner_id": "U-4",
            "amount": amount,
            "stage": "Needs Analysis",
            "probability": 40,
            "close_date": "2027-03-01",
            "products": ["Legacy Reporting Suite"],
        }
        for opp, amount in BIG_DEALS.items()
    )
    return sandbox


def open_tasks(sandbox: SandboxConnector) -> list[dict]:
    return [t for t in sandbox.tasks() if t["status"] != "Completed"]


def test_cap_opens_the_most_important_and_queues_the_rest(runtime, crm):
    outcome = sweep(runtime)
    created = sorted(outcome.coaching.created)
    assert created == ["OPP-A:big-off-strategy-deal", "OPP-B:big-off-strategy-deal"]
    assert outcome.coaching.queued == 2
    queued = runtime.store.tasks.for_reps("sandbox", ["U-4"], "queued")
    assert [(r.opportunity_id, r.rule) for r in queued] == [
        ("OPP-C", "big-off-strategy-deal"),
        ("OPP-D", "big-off-strategy-deal"),
    ]
    tasks = open_tasks(crm)
    assert sorted(t["opportunity_id"] for t in tasks) == ["OPP-A", "OPP-B"]
    assert {t["assignee_id"] for t in tasks} == {"U-1"}  # the rep's manager
    assert all(t["priority"] == "High" for t in tasks)
    assert tasks[0]["subject"].startswith("Coach Sean O'Brien: large off-strategy deal")
    assert tasks[0]["due_date"] == date.fromordinal(date.today().toordinal() + 3).isoformat()


def test_a_completed_task_is_noticed_and_the_cap_still_holds(runtime, crm):
    sweep(runtime)
    first = next(t for t in crm.tasks() if t["opportunity_id"] == "OPP-A")
    crm.complete_task(first["id"])
    outcome = sweep(runtime)
    assert outcome.coaching.noticed == ["OPP-A:big-off-strategy-deal"]
    assert len(outcome.coaching.created) == 1
    assert len(open_tasks(crm)) == 2
    assert runtime.store.tasks.open_count("sandbox", "U-4") == 2
    completed = [t for t in runtime.store.tasks.all_tasks() if t.status == "completed"]
    assert [(t.opportunity_id, t.task_id) for t in completed] == [("OPP-A", first["id"])]


def test_completing_a_task_promotes_the_next_queued_one(runtime, crm):
    sweep(runtime)
    first = next(t for t in crm.tasks() if t["opportunity_id"] == "OPP-A")
    crm.complete_task(first["id"])
    outcome = sweep(runtime)
    assert outcome.coaching.noticed == ["OPP-A:big-off-strategy-deal"]
    assert outcome.coaching.created == ["OPP-C:big-off-strategy-deal"]
    assert sorted(t["opportunity_id"] for t in open_tasks(crm)) == ["OPP-B", "OPP-C"]
    statuses = {(t.opportunity_id, t.status) for t in runtime.store.tasks.all_tasks()}
    assert statuses == {
        ("OPP-A", "completed"),
        ("OPP-B", "open"),
        ("OPP-C", "open"),
        ("OPP-D", "queued"),
    }
    # The completed deal still wants coaching but its task was done: it is not re-created.
    again = sweep(runtime)
    assert again.coaching.created == []


def test_deleting_a_task_in_the_crm_frees_its_slot(runtime, crm):
    sweep(runtime)
    first = next(t for t in crm.tasks() if t["opportunity_id"] == "OPP-B")
    crm.delete_task(first["id"])
    outcome = sweep(runtime)
    assert outcome.coaching.noticed == ["OPP-B:big-off-strategy-deal"]
    assert outcome.coaching.created == ["OPP-C:big-off-strategy-deal"]
    assert runtime.store.tasks.open_count("sandbox", "U-4") == 2


def test_deal_becoming_on_strategy_closes_its_task_and_clears_its_warning(runtime, crm):
    sweep(runtime)
    assert crm.opportunity_fields("OPP-A")["warning"]
    crm.set_opportunity("OPP-A", account_id="ACC-MFG", products=["Data Platform"])
    outcome = runtime.processor("sandbox").process_ids(["OPP-A"])
    assert outcome.coaching.closed == ["OPP-A:big-off-strategy-deal"]
    row = crm.opportunity_fields("OPP-A")
    assert row["fit"] == "On Strategy"
    assert row["warning"] in ("", None)
    [task] = crm.tasks("OPP-A")
    assert task["status"] == "Completed"
    assert task["body"].endswith("Closed by OnStrategy: the deal is now On Strategy.")
    # Its slot went to the next queued deal.
    assert outcome.coaching.created == ["OPP-C:big-off-strategy-deal"]
    assert runtime.store.tasks.open_count("sandbox", "U-4") == 2


def test_an_approved_exception_closes_the_task_with_the_reason(runtime, crm):
    sweep(runtime)
    crm.set_opportunity("OPP-B", exception_reason="Opens doors at Acme")
    runtime.processor("sandbox").process_ids(["OPP-B"])
    [task] = crm.tasks("OPP-B")
    assert task["status"] == "Completed"
    assert "the exception was approved" in task["body"]
    assert crm.opportunity_fields("OPP-B")["fit"] == "Off Strategy (Approved)"


def test_redelivery_creates_no_duplicate_tasks(runtime, crm):
    keys = {opp: f"evt-{opp}" for opp in BIG_DEALS}
    processor = runtime.processor("sandbox")
    processor.process_ids([*BIG_DEALS, *BIG_DEALS], keys)
    processor.process_ids(list(BIG_DEALS), keys)
    runtime.processor("sandbox").process_ids(list(reversed(BIG_DEALS)), keys)
    assert len(crm.tasks()) == 2
    rows = runtime.store.tasks.all_tasks()
    assert sorted((t.opportunity_id, t.status) for t in rows) == [
        ("OPP-A", "open"),
        ("OPP-B", "open"),
        ("OPP-C", "queued"),
        ("OPP-D", "queued"),
    ]


def test_own_tasks_only(runtime, crm):
    """A task a person created on the deal is never counted, edited or closed."""
    from connectors.base import TaskSpec

    [human] = crm.create_tasks(
        [TaskSpec("human", "OPP-A", "U-1", "Call the customer", "", date(2027, 1, 1))]
    )
    sweep(runtime)
    crm.set_opportunity("OPP-A", account_id="ACC-MFG", products=["Data Platform"])
    sweep(runtime)
    mine = [t for t in crm.tasks("OPP-A") if t["id"] == human.id]
    assert mine[0]["status"] == "Open" and mine[0]["body"] == ""


# -- CRM write failures ---------------------------------------------------------------------------


class RejectingSandbox(SandboxConnector):
    """The CRM at the boundary: rejects writes to some ids, like a validation rule would."""

    def __init__(self, reject: set[str], retryable: bool) -> None:
        super().__init__(":memory:")
        self.reject, self.retryable = reject, retryable

    def update_opportunities(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        passing = [u for u in updates if u.opportunity_id not in self.reject]
        results = super().update_opportunities(passing)
        return results + [
            WriteResult(
                u.opportunity_id,
                ok=False,
                error="FIELD_CUSTOM_VALIDATION_EXCEPTION",
                retryable=self.retryable,
            )
            for u in updates
            if u.opportunity_id in self.reject
        ]


def _failing_processor(rules_dir, sqlite_store, retryable: bool):
    connector = RejectingSandbox({"OPP-B"}, retryable)
    connector.add_opportunity("OPP-A", name="A", amount=10)
    connector.add_opportunity("OPP-B", name="B", amount=20)
    rulebook, problems = load_rulebook(rules_dir)
    assert problems == []
    return connector, Processor(connector, rulebook, sqlite_store)


def test_a_rejected_write_is_recorded_on_the_decision_and_in_the_writes(rules_dir, sqlite_store):
    connector, processor = _failing_processor(rules_dir, sqlite_store, retryable=False)
    outcome = processor.process_ids(["OPP-A", "OPP-B"])
    assert (outcome.changed, outcome.failed) == (1, 1)
    assert connector.opportunity_fields("OPP-A")["fit"] == "Off Strategy"
    assert connector.opportunity_fields("OPP-B")["fit"] is None
    latest = sqlite_store.latest("sandbox", "OPP-B")
    assert json.loads(latest.errors) == ["write failed: FIELD_CUSTOM_VALIDATION_EXCEPTION"]
    writes = sqlite_store.writes_for([latest.id])
    assert writes and {(w.status, w.error) for w in writes} == {
        ("failed", "FIELD_CUSTOM_VALIDATION_EXCEPTION")
    }
    ok = sqlite_store.latest("sandbox", "OPP-A")
    assert {w.status for w in sqlite_store.writes_for([ok.id])} == {"ok"}


def test_a_retryable_failure_raises_retry_later_after_recording(rules_dir, sqlite_store):
    connector, processor = _failing_processor(rules_dir, sqlite_store, retryable=True)
    with pytest.raises(RetryLater):
        processor.process_ids(["OPP-A", "OPP-B"])
    assert sqlite_store.latest("sandbox", "OPP-A") is not None
    failed = sqlite_store.latest("sandbox", "OPP-B")
    assert [w.status for w in sqlite_store.writes_for([failed.id])] == ["failed"] * 3
    # The retry writes only what is still missing.
    connector.reject = set()
    outcome = processor.process_ids(["OPP-A", "OPP-B"])
    assert outcome.changed == 1 and outcome.failed == 0
    assert connector.opportunity_fields("OPP-B")["fit"] == "Off Strategy"


def test_a_deleted_deal_frees_its_slot_for_the_next_queued_task(bind, runtime, crm):
    from integration.jobs import handlers as jobs

    sweep(runtime)
    bind(runtime)
    assert jobs.forget_opportunities("sandbox", ["OPP-A"], {"OPP-A": "hubspot:del-1"}) == 1
    statuses = {(t.opportunity_id, t.status) for t in runtime.store.tasks.all_tasks()}
    assert ("OPP-A", "deleted") in statuses and ("OPP-C", "open") in statuses
    assert sorted(t["opportunity_id"] for t in open_tasks(crm)) == ["OPP-A", "OPP-B", "OPP-C"]
    assert runtime.store.tasks.open_count("sandbox", "U-4") == 2  # OPP-A's task stops counting
    assert runtime.store.unseen_events("sandbox", ["hubspot:del-1"]) == set()
