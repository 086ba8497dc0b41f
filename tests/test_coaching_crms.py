"""Coaching tasks against each CRM's fake: cap, queue, promotion, follow-through.

The same scenarios run on every CRM: a rep with many qualifying deals has
exactly the cap open (the most important ones), completing one in the CRM brings
the next, redelivery duplicates nothing, and a deal that stops qualifying gets
its task closed with a comment and its warning cleared.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import responses

from connectors.hubspot import HubSpotConnector
from connectors.hubspot_api import HubSpotApi
from connectors.ratelimit import TokenBucket
from fakes.hubspot_server import FakeHubSpot
from integration.domain.fields import FieldMap
from integration.engine.rulebook import load_rulebook
from integration.pipeline.processor import Processor, RetryLater
from integration.store.database import Store
from sf_fake import SalesforceFake

ROOT = Path(__file__).resolve().parent.parent
OWNER, MANAGER = "0055w00000BhqR0AAJ", "0055w00000BhqR1AAJ"
DEALS = 4  # more than the cap of 2


class SalesforceHarness:
    """Drives the Salesforce fake the way a manager and a rep would."""

    crm = "salesforce"
    rep = OWNER

    def __init__(self, fake: SalesforceFake) -> None:
        self.fake = fake
        fake.add_user("Dana Reyes", Id=OWNER, Email="dana@acme.example", ManagerId=MANAGER)
        fake.add_user("Morgan Blake", Id=MANAGER, Email="morgan@acme.example")
        self.boss = fake.add_user("Riley Boss", Email="boss@acme.example")
        self.boss_row = f"salesforce,{OWNER},Boss@Acme.example\n"
        retail = fake.add_account("Shopright", Industry="Retail", NumberOfEmployees=300)
        self.target = fake.add_account(
            "Acme Manufacturing", Industry="Manufacturing", NumberOfEmployees=5000
        )
        self.ids = [
            fake.add_opportunity(
                f"Shopright renewal {i}",
                retail,
                OWNER,
                products=("Support Renewal",),
                Amount=150000.0 + 50000 * i,
                StageName="Negotiation",
                Probability=80,
                CloseDate="2027-03-01",
            )
            for i in range(DEALS)
        ]
        self.connector = fake.connector()
        self.managers_row = ""
        self.expected_manager = MANAGER

    def open_tasks(self) -> list[dict[str, Any]]:
        return [t for t in self.fake.tasks.values() if not t["IsClosed"] and not t["IsDeleted"]]

    def task_deal(self, task: dict[str, Any]) -> str:
        return task["WhatId"]

    def task_owner(self, task: dict[str, Any]) -> str:
        return task["OwnerId"]

    def complete(self, task: dict[str, Any]) -> None:
        task.update(Status="Completed", IsClosed=True)

    def make_on_strategy(self, opp: str) -> None:
        self.fake.opportunities[opp]["AccountId"] = self.target
        self.fake.line_items[opp] = ["Data Platform"]

    def warning(self, opp: str) -> Any:
        return self.fake.opportunities[opp].get("Strategy_Warning__c")

    def task_comment(self, task: dict[str, Any]) -> str:
        return task.get("Description", "")

    def fail_task_creation(self, status: int, times: int, commit: bool = False) -> None:
        self.fake.fail_creates(status, times, commit)

    def task_id(self, task: dict[str, Any]) -> str:
        return task["Id"]

    def stop_failing(self) -> None:
        self.fake.stop_failing()


class HubSpotHarness:
    """Drives the HubSpot fake; HubSpot owners have no manager, so managers.csv names it."""

    crm = "hubspot"
    rep, manager = "7", "8"

    def __init__(self, hs: FakeHubSpot) -> None:
        self.hs = hs
        hs.add_owner(self.rep, "Ada", "Lovelace", "ada@example.com")
        hs.add_owner(self.manager, "Grace", "Hopper", "grace@example.com")
        hs.add_owner("9", "Riley", "Boss", "boss@example.com")
        self.boss, self.boss_row = "9", f"hubspot,{self.rep},Boss@Example.com\n"
        hs.add_company("10", name="Shopright", industry="RETAIL", numberofemployees="300")
        hs.add_company(
            "20", name="Acme Manufacturing", industry="MANUFACTURING", numberofemployees="5000"
        )
        self.ids = [str(100 + i) for i in range(DEALS)]
        for i, deal in enumerate(self.ids):
            hs.add_deal(
                deal,
                company="10",
                line_items=("Support Renewal",),
                amount=str(150000 + 50000 * i),
                dealstage="contractsent",
                pipeline="default",
                hubspot_owner_id=self.rep,
                hs_is_closed="false",
                closedate="2027-03-01T00:00:00.000Z",
            )
        buckets = {name: TokenBucket(10_000, 1.0, burst=10_000) for name in ("general", "search")}
        self.connector = HubSpotConnector(
            HubSpotApi.create("t", hs.url, buckets=buckets), FieldMap.for_crm("hubspot")
        )
        self.managers_row = f"hubspot,{self.rep},{self.manager}\n"
        self.expected_manager = self.manager

    def _tasks(self) -> list[dict[str, Any]]:
        return [t for t in self.hs.state.objects["tasks"].values() if not t.get("archived")]

    def open_tasks(self) -> list[dict[str, Any]]:
        return [t for t in self._tasks() if t["properties"]["hs_task_status"] != "COMPLETED"]

    def task_deal(self, task: dict[str, Any]) -> str:
        deals = self.hs.state.associations.get(("tasks", "deals", str(task["id"])), {})
        return next(iter(deals))

    def task_owner(self, task: dict[str, Any]) -> str:
        return task["properties"]["hubspot_owner_id"]

    def complete(self, task: dict[str, Any]) -> None:
        task["properties"]["hs_task_status"] = "COMPLETED"

    def make_on_strategy(self, deal: str) -> None:
        self.hs.state.associations.pop(("deals", "companies", deal), None)
        self.hs.state.associate("deals", deal, "companies", "20")
        for item in list(self.hs.state.associations.get(("deals", "line_items", deal), {})):
            self.hs.state.objects["line_items"][item]["properties"]["name"] = "Data Platform"

    def warning(self, deal: str) -> Any:
        return self.hs.deal_properties(deal).get("strategy_warning")

    def task_comment(self, task: dict[str, Any]) -> str:
        return task["properties"].get("hs_task_body", "")

    def fail_task_creation(self, status: int, times: int, commit: bool = False) -> None:
        path = "/crm/v3/objects/tasks/batch/create"
        headers = {"Retry-After": "0.01"}  # keep the test quick
        self.hs.fail_next(status, times, path=path, headers=headers, commit=commit)

    def task_id(self, task: dict[str, Any]) -> str:
        return str(task["id"])

    def stop_failing(self) -> None:
        self.hs.stop_failing()


@pytest.fixture(params=["salesforce", "hubspot"])
def harness(request) -> Iterator[Any]:
    if request.param == "hubspot":
        with FakeHubSpot(token="t") as hs:
            yield HubSpotHarness(hs)
        return
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = SalesforceFake()
        fake.register(rsps)
        yield SalesforceHarness(fake)


@pytest.fixture
def pipeline(harness, tmp_path, request):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    with open(rules / "managers.csv", "a", encoding="utf-8") as handle:
        handle.write(harness.boss_row if "by_email" in request.node.name else harness.managers_row)
    rulebook, problems = load_rulebook(rules)
    assert not problems
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()

    def run(ids: list[str] | None = None) -> Any:
        processor = Processor(harness.connector, rulebook, store, today=lambda: date(2026, 11, 26))
        return processor.process_ids(ids or harness.ids)

    return run, store


def test_rep_with_many_qualifying_deals_has_exactly_the_cap_open(harness, pipeline):
    run, store = pipeline
    run()
    open_tasks = harness.open_tasks()
    assert len(open_tasks) == 2
    assert {harness.task_owner(t) for t in open_tasks} == {harness.expected_manager}
    biggest = harness.ids[-1]  # the largest amount x probability comes first
    assert biggest in {harness.task_deal(t) for t in open_tasks}
    assert store.tasks.for_reps(harness.crm, [harness.rep], "queued")


def test_redelivery_duplicates_nothing(harness, pipeline):
    run, _ = pipeline
    run()
    before = len(harness.open_tasks())
    run()
    run(harness.ids[:1])
    assert len(harness.open_tasks()) == before == 2


def test_completing_a_task_brings_the_next_queued_one(harness, pipeline):
    run, store = pipeline
    run()
    done = harness.open_tasks()[0]
    harness.complete(done)
    run()
    open_tasks = harness.open_tasks()
    assert len(open_tasks) == 2
    assert done not in open_tasks
    completed = [r for r in store.tasks.all_tasks(harness.crm) if r.status == "completed"]
    assert len(completed) == 1


def test_deal_no_longer_qualifying_closes_its_task_and_clears_the_warning(harness, pipeline):
    run, _ = pipeline
    run()
    task = harness.open_tasks()[0]
    deal = harness.task_deal(task)
    assert harness.warning(deal)
    harness.make_on_strategy(deal)
    run()
    assert deal not in {harness.task_deal(t) for t in harness.open_tasks()}
    assert "now On Strategy" in harness.task_comment(task)
    assert not harness.warning(deal)


def test_manager_named_by_email_gets_the_tasks(harness, pipeline):
    """The file wins over the CRM's own manager, and an email becomes the user's id."""
    run, _ = pipeline
    run()
    assert {harness.task_owner(t) for t in harness.open_tasks()} == {harness.boss}


def _assert_nothing_leaked(store: Store, harness: Any, open_rows: int) -> None:
    rows = store.tasks.all_tasks(harness.crm)
    assert [r for r in rows if r.status == "starting"] == []
    assert sum(1 for r in rows if r.status == "open") == open_rows
    assert store.tasks.open_count(harness.crm, harness.rep) == open_rows
    assert store.tasks.mismatched() == []


@pytest.mark.parametrize("status", [429, 503])
def test_storm_on_task_creation_leaks_nothing_and_creates_once_it_passes(harness, pipeline, status):
    run, store = pipeline
    harness.fail_task_creation(status, times=100)
    with pytest.raises(RetryLater):
        run()
    assert harness.open_tasks() == []
    _assert_nothing_leaked(store, harness, 0)  # the slots went back with the rows
    assert store.latest(harness.crm, harness.ids[0]) is not None  # the decisions are recorded
    harness.stop_failing()
    run()
    assert len(harness.open_tasks()) == 2
    _assert_nothing_leaked(store, harness, 2)


def test_create_that_committed_but_timed_out_is_adopted_not_repeated(harness, pipeline):
    run, store = pipeline
    harness.fail_task_creation(504 if harness.crm == "hubspot" else 503, times=1, commit=True)
    with pytest.raises(RetryLater):
        run()
    created = harness.open_tasks()
    assert len(created) == 2  # in the CRM, though the service never saw the answer
    _assert_nothing_leaked(store, harness, 0)
    run()
    assert harness.open_tasks() == created  # adopted by their marker: no duplicate
    rows = [r for r in store.tasks.all_tasks(harness.crm) if r.status == "open"]
    assert sorted(r.task_id for r in rows) == sorted(harness.task_id(t) for t in created)
    _assert_nothing_leaked(store, harness, 2)
