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

from integration.processor import Processor
from integration.rulebook import load_rulebook
from integration.store import Store
from sf_fake import SalesforceFake

ROOT = Path(__file__).resolve().parent.parent
OWNER, MANAGER = "0055w00000BhqR0AAJ", "0055w00000BhqR1AAJ"
DEALS = 4  # more than the cap of 2


class SalesforceHarness:
    """Drives the Salesforce fake the way a manager and a rep would."""

    crm = "salesforce"

    def __init__(self, fake: SalesforceFake) -> None:
        self.fake = fake
        fake.add_user("Dana Reyes", Id=OWNER, Email="dana@acme.example", ManagerId=MANAGER)
        fake.add_user("Morgan Blake", Id=MANAGER, Email="morgan@acme.example")
        retail = fake.add_account("Shopright", Industry="Retail", NumberOfEmployees=300)
        self.target = fake.add_account("Acme Manufacturing", Industry="Manufacturing",
                                       NumberOfEmployees=5000)  # fmt: skip
        self.ids = [
            fake.add_opportunity(f"Shopright renewal {i}", retail, OWNER,
                                 products=("Support Renewal",), Amount=150000.0 + 50000 * i,
                                 StageName="Negotiation", Probability=80,
                                 CloseDate="2027-03-01")
            for i in range(DEALS)
        ]
        self.connector = fake.connector()

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


@pytest.fixture(params=["salesforce"])
def harness(request) -> Iterator[SalesforceHarness]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = SalesforceFake()
        fake.register(rsps)
        yield SalesforceHarness(fake)


@pytest.fixture
def pipeline(harness, tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
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
    assert {harness.task_owner(t) for t in open_tasks} == {MANAGER}
    biggest = harness.ids[-1]  # the largest amount x probability comes first
    assert biggest in {harness.task_deal(t) for t in open_tasks}
    assert store.tasks.for_reps(harness.crm, [OWNER], "queued")


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
