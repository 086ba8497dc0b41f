"""HubSpotConnector against the local HubSpot fake: hydration, batching, writes, errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from connectors.base import (
    AuthError,
    Connector,
    FieldUpdate,
    OpportunityQuery,
    RateLimited,
    TaskClose,
    TaskSpec,
    TransientError,
)
from connectors.hubspot import HubSpotConnector
from connectors.hubspot_api import HubSpotApi
from connectors.ratelimit import TokenBucket
from integration.domain.fields import FieldMap

try:
    from tests.fakes.hubspot_server import FakeHubSpot
except ModuleNotFoundError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    from fakes.hubspot_server import FakeHubSpot

FIELDS = FieldMap.for_crm("hubspot")


@pytest.fixture
def hs() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(token="secret-token") as fake:
        yield fake


class FakeClock:
    """Time that passes only when someone sleeps: rate-limit pauses cost no real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 2))
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def connector(hs: FakeHubSpot, clock: FakeClock) -> HubSpotConnector:
    buckets = {
        name: TokenBucket(10_000, 1.0, burst=10_000, clock=clock, sleep=clock.sleep)
        for name in ("general", "search")
    }
    api = HubSpotApi.create("secret-token", hs.url, buckets=buckets, sleep=clock.sleep)
    return HubSpotConnector(api, FIELDS)


def seed(hs: FakeHubSpot) -> None:
    hs.add_owner(
        "7",
        "Ada",
        "Lovelace",
        "ada@example.com",
        teams=[
            {"id": "1", "name": "West", "primary": False},
            {"id": "2", "name": "Enterprise East", "primary": True},
        ],
    )
    hs.add_company(
        "10",
        name="Acme Tools",
        industry="MACHINERY",
        numberofemployees="5000",
        annualrevenue="12000000.5",
        country="Germany",
        domain="acme.example",
        hs_is_target_account="true",
    )
    hs.add_company("11", name="Side Co", industry="COMPUTER_SOFTWARE")
    hs.add_deal(
        "1",
        company="10",
        companies=("11",),
        line_items=("Data Platform", "Support"),
        amount="250000",
        deal_currency_code="EUR",
        dealstage="contractsent",
        pipeline="default",
        closedate="2026-03-31T23:30:00.000Z",
        hs_is_closed="false",
        hs_is_closed_won="false",
        dealtype="newbusiness",
        hubspot_owner_id="7",
        strategy_fit="Off Strategy",
        comp_eligible="false",
        strategy_exception_reason="Board request",
    )


def test_is_a_connector(connector: HubSpotConnector) -> None:
    assert isinstance(connector, Connector) and connector.name == "hubspot"


def test_hydrates_facts(hs: FakeHubSpot, connector: HubSpotConnector) -> None:
    seed(hs)
    [record] = connector.read_opportunities(["1"])
    opp, account, owner = record.facts.opportunity, record.facts.account, record.facts.owner
    assert (opp.name, opp.amount, opp.currency) == ("Deal 1", 250000.0, "EUR")
    assert (opp.stage, opp.probability, opp.close_date) == ("Contract Sent", 90, "2026-03-31")
    assert (opp.is_closed, opp.type) == (False, "newbusiness")
    assert opp.exception_reason == "Board request"
    assert opp.created_date == datetime.now(UTC).date().isoformat()  # the fake's createdate
    assert (account.id, account.name, account.industry) == ("10", "Acme Tools", "Machinery")
    assert (account.employees, account.annual_revenue, account.crm_target_flag) == (
        5000,
        12000000.5,
        True,
    )
    assert (owner.name, owner.email, owner.team) == (
        "Ada Lovelace",
        "ada@example.com",
        "Enterprise East",
    )
    assert sorted(record.facts.products) == ["Data Platform", "Support"]
    assert record.current == {
        "fit": "Off Strategy",
        "reason": None,
        "warning": None,
        "comp_eligible": False,
    }


def test_null_safe_defaults(hs: FakeHubSpot, connector: HubSpotConnector) -> None:
    hs.add_deal("2", amount="", hs_deal_stage_probability="0.35", dealstage="unknown")
    [record] = connector.read_opportunities(["2"])
    opp = record.facts.opportunity
    assert (opp.amount, opp.probability, opp.stage, opp.close_date) == (0.0, 35, "unknown", "")
    assert record.facts.account.id == "" and record.facts.products == ()


def test_missing_ids_are_left_out(hs: FakeHubSpot, connector: HubSpotConnector) -> None:
    seed(hs)
    assert [r.id for r in connector.read_opportunities(["1", "404"])] == ["1"]


def test_batches_of_100(hs: FakeHubSpot, connector: HubSpotConnector) -> None:
    hs.add_company("10", name="Acme")
    for i in range(1, 251):
        hs.add_deal(str(i), company="10", line_items=("Data Platform",), hubspot_owner_id="7")
    records = connector.read_opportunities([str(i) for i in range(1, 251)])
    assert len(records) == 250
    calls = connector.api_calls
    assert calls["deals.read"] == 3
    # Hydrated together: one association read per kind (1,000 ids per call), the
    # shared company once, the one product's 250 line items in three reads of 100.
    assert calls["associations.deals.companies"] == calls["associations.deals.line_items"] == 1
    assert calls["companies.read"] == 1 and calls["line_items.read"] == 3
    assert calls["owners"] == calls["pipelines"] == calls["properties.read"] == 1
    assert sum(calls.values()) == 3 + 2 + 1 + 3 + 3
    assert all(
        len(r.body["inputs"]) <= 100 for r in hs.calls("POST") if "associations" not in r.path
    )
    assert {
        r.path: len(r.body["inputs"]) for r in hs.calls("POST") if "associations" in r.path
    } == {
        "/crm/v4/associations/deals/companies/batch/read": 250,
        "/crm/v4/associations/deals/line_items/batch/read": 250,
    }


def test_association_reads_take_1000_ids_and_no_more(
    hs: FakeHubSpot, connector: HubSpotConnector
) -> None:
    for i in range(1, 1201):
        hs.add_deal(str(i), hubspot_owner_id="7")
    records = connector.read_opportunities([str(i) for i in range(1, 1201)])
    assert len(records) == 1200
    sizes = [
        len(r.body["inputs"])
        for r in hs.calls("POST")
        if r.path.endswith("deals/line_items/batch/read")
    ]
    assert sizes == [1000, 200]


def test_search_pages_by_object_id(hs: FakeHubSpot, connector: HubSpotConnector) -> None:
    for i in range(1, 251):
        hs.add_deal(
            str(i),
            hs_is_closed="true" if i % 5 == 0 else "false",
            closedate="2026-01-15T00:00:00Z" if i % 10 == 0 else "2025-01-15T00:00:00Z",
        )
    query = OpportunityQuery(open_only=True, closed_after=date(2026, 1, 1))
    pages = list(connector.iter_opportunities(query))
    ids = [r.id for page in pages for r in page]
    expected = [str(i) for i in range(1, 251) if i % 5 or i % 10 == 0]
    assert ids == expected
    assert connector.api_calls["deals.search"] <= 3
    assert all(len(page) <= query.page_size for page in pages)
    body = hs.calls("POST", "/search")[-1].body
    assert body["filterGroups"][0]["filters"][0]["operator"] == "GT" and "after" not in body


def test_accounts_query_uses_associations(hs: FakeHubSpot, connector: HubSpotConnector) -> None:
    seed(hs)
    hs.add_deal("3", company="11", hs_is_closed="true", closedate="2020-01-01T00:00:00Z")
    hs.add_deal("4")
    query = OpportunityQuery(account_ids=["10", "11"], open_only=True)
    assert [r.id for page in connector.iter_opportunities(query) for r in page] == ["1"]
    assert connector.api_calls["deals.search"] == 0


def test_accounts_query_knows_primary_companies_without_a_second_read(
    hs: FakeHubSpot, connector: HubSpotConnector
) -> None:
    seed(hs)  # deal 1: primary company 10, also associated with 11
    [[via_primary]] = connector.iter_opportunities(OpportunityQuery(account_ids=["10"]))
    assert via_primary.facts.account.id == "10"
    assert connector.api_calls["associations.deals.companies"] == 0
    [[via_other]] = connector.iter_opportunities(OpportunityQuery(account_ids=["11"]))
    assert via_other.facts.account.id == "10"  # still the deal's primary company
    assert connector.api_calls["associations.deals.companies"] == 1


def test_update_writes_only_given_fields(hs: FakeHubSpot, connector: HubSpotConnector) -> None:
    seed(hs)
    [result] = connector.update_opportunities(
        [FieldUpdate("1", {"fit": "On Strategy", "comp_eligible": True, "warning": ""})]
    )
    assert result.ok and result.ref == "1"
    props = hs.deal_properties("1")
    assert (props["strategy_fit"], props["comp_eligible"], props["strategy_warning"]) == (
        "On Strategy",
        "true",
        "",
    )
    assert hs.calls("POST", "/deals/batch/update")[0].body["inputs"] == [
        {
            "id": "1",
            "properties": {
                "strategy_fit": "On Strategy",
                "comp_eligible": "true",
                "strategy_warning": "",
            },
        }
    ]
    assert "strategy_fit_reason" not in props


def test_update_reports_207_errors_per_input(hs: FakeHubSpot, connector: HubSpotConnector) -> None:
    for i in ("1", "2"):
        hs.add_deal(i)
    hs.state.fail_updates["2"] = "Property values were not valid"
    results = connector.update_opportunities(
        [FieldUpdate(i, {"reason": "x"}) for i in ("1", "2", "404")]
    )
    assert [(r.ref, r.ok) for r in results] == [("1", True), ("2", False), ("404", False)]
    assert "not valid" in results[1].error


def test_batch_refused_for_one_record_is_split_until_it_is_alone(
    hs: FakeHubSpot, connector: HubSpotConnector
) -> None:
    """HubSpot answers 400 for the whole batch when one value is not an allowed option."""
    hs.add_property(
        "deals",
        {
            "name": "strategy_fit",
            "type": "enumeration",
            "options": [{"value": "On Strategy"}, {"value": "Off Strategy"}],
        },
    )
    ids = [str(i) for i in range(1, 31)]
    for i in ids:
        hs.add_deal(i)
    updates = [FieldUpdate(i, {"fit": "Bogus" if i == "17" else "Off Strategy"}) for i in ids]
    results = connector.update_opportunities(updates)
    assert [r.ref for r in results if not r.ok] == ["17"]
    assert "not a valid option" in results[16].error
    assert all(
        hs.deal_properties(i).get("strategy_fit") == "Off Strategy" for i in ids if i != "17"
    )
    assert len(hs.calls("POST", "/deals/batch/update")) <= 11  # halving: log2(30) calls deep


def test_create_tasks(hs: FakeHubSpot, connector: HubSpotConnector) -> None:
    seed(hs)
    specs = [
        TaskSpec(f"k{i}", "1", "7", f"Coach {i}", "Review fit", date(2026, 5, 4), prio)
        for i, prio in enumerate(["High", "Normal"])
    ]
    results = connector.create_tasks(specs)
    assert [r.ref for r in results] == ["k0", "k1"] and all(r.ok and r.id for r in results)
    task = hs.task(results[0].id)["properties"]
    assert task["hs_task_subject"] == "Coach 0" and task["hs_task_priority"] == "HIGH"
    assert task["hubspot_owner_id"] == "7" and task["hs_task_status"] == "NOT_STARTED"
    association = hs.calls("POST", "/tasks/batch/create")[0].body["inputs"][0]["associations"][0]
    assert association["types"] == [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 216}
    ]
    assert len(hs.tasks_for_deal("1")) == 2


def test_task_states_and_close(hs: FakeHubSpot, connector: HubSpotConnector) -> None:
    hs.add_deal("1")
    hs.add_task("501", deal="1", hs_task_body="Review fit")
    hs.add_task("502", deal="1", hs_task_status="COMPLETED")
    hs.add_task("503", deal="1")
    hs.delete("tasks", "503")
    assert connector.task_states(["501", "502", "503"]) == {
        "501": "open",
        "502": "completed",
        "503": "deleted",
    }
    results = connector.close_tasks(
        [TaskClose("501", "Deal is now on strategy."), TaskClose("503", "gone")]
    )
    assert [(r.ref, r.ok) for r in results] == [("501", True), ("503", False)]
    props = hs.task("501")["properties"]
    assert props["hs_task_status"] == "COMPLETED"
    assert props["hs_task_body"] == "Review fit\n\nDeal is now on strategy."


def test_ensure_fields_is_idempotent(hs: FakeHubSpot, connector: HubSpotConnector) -> None:
    created = connector.ensure_fields(["On Strategy", "Off Strategy"])
    assert created == [
        "property group onstrategy",
        "strategy_fit",
        "strategy_fit_reason",
        "strategy_warning",
        "comp_eligible",
        "strategy_exception_reason",
    ]
    assert hs.property("deals", "comp_eligible")["fieldType"] == "booleancheckbox"
    assert connector.ensure_fields(["On Strategy", "Off Strategy"]) == []
    added = connector.ensure_fields(["On Strategy", "Off Strategy", "Off Strategy (Approved)"])
    assert added == ["strategy_fit options: Off Strategy (Approved)"]
    values = [o["value"] for o in hs.property("deals", "strategy_fit")["options"]]
    assert values == ["On Strategy", "Off Strategy", "Off Strategy (Approved)"]


def test_429_then_success(hs: FakeHubSpot, connector: HubSpotConnector, clock: FakeClock) -> None:
    seed(hs)
    hs.fail_next(429, count=2, headers={"Retry-After": "2"}, path="/deals/batch/update")
    [result] = connector.update_opportunities([FieldUpdate("1", {"fit": "On Strategy"})])
    assert result.ok and clock.sleeps == [2.0, 2.0]
    assert connector.api_calls["deals.update"] == 3


def test_429_exhausted_raises_rate_limited(
    hs: FakeHubSpot, connector: HubSpotConnector, clock: FakeClock
) -> None:
    hs.fail_next(429, count=5)
    with pytest.raises(RateLimited) as info:
        connector.read_opportunities(["1"])
    assert info.value.retry_after == 10.0 and info.value.retryable
    assert clock.sleeps == [10.0, 10.0]


def test_a_5xx_blip_is_retried_inside_the_call(
    hs: FakeHubSpot, connector: HubSpotConnector, clock: FakeClock
) -> None:
    seed(hs)
    hs.fail_next(503, count=2, path="/deals/batch/read")
    assert [r.id for r in connector.read_opportunities(["1"])] == ["1"]
    assert clock.sleeps == [0.5, 1.0] and connector.api_calls["deals.read"] == 3


def test_a_5xx_that_lasts_is_transient(
    hs: FakeHubSpot, connector: HubSpotConnector, clock: FakeClock
) -> None:
    hs.fail_next(500, count=3)
    with pytest.raises(TransientError) as info:
        connector.read_opportunities(["1"])
    assert info.value.status == 500 and info.value.retryable
    assert connector.api_calls["deals.read"] == 3


def test_a_create_is_never_run_twice_by_the_client(
    hs: FakeHubSpot, connector: HubSpotConnector, clock: FakeClock
) -> None:
    """Its first attempt may have created the task: the job's retry adopts it instead."""
    seed(hs)
    hs.fail_next(504, path="/tasks/batch/create", commit=True)
    with pytest.raises(TransientError):
        connector.create_tasks([TaskSpec("k0", "1", "7", "Coach", "Review fit", date(2026, 5, 4))])
    assert connector.api_calls["tasks.create"] == 1 and clock.sleeps == []
    assert len(hs.tasks_for_deal("1")) == 1


def test_bad_token_is_auth_error(hs: FakeHubSpot) -> None:
    connector = HubSpotConnector(HubSpotApi.create("wrong", hs.url), FIELDS)
    with pytest.raises(AuthError) as info:
        connector.read_opportunities(["1"])
    assert info.value.status == 401 and not info.value.retryable


def test_connection_refused_is_transient(hs: FakeHubSpot) -> None:
    url = hs.url
    hs.stop()
    connector = HubSpotConnector(HubSpotApi.create("secret-token", url), FIELDS)
    with pytest.raises(TransientError):
        connector.read_opportunities(["1"])


def test_fake_refuses_batches_over_100(hs: FakeHubSpot, connector: HubSpotConnector) -> None:
    from connectors.base import RejectedError

    body = {"inputs": [{"id": str(i)} for i in range(101)], "properties": []}
    with pytest.raises(RejectedError):
        connector.api.call(
            "deals.read",
            "crm.deals.batch_api",
            "read",
            batch_read_input_simple_public_object_id=body,
        )


def test_a_new_rep_is_found_without_restarting_the_worker(
    hs: FakeHubSpot, connector: HubSpotConnector
) -> None:
    seed(hs)
    connector.read_opportunities(["1"])
    hs.add_owner("9", "New", "Rep", "new@example.com")
    hs.add_deal("2", company="10", hubspot_owner_id="9")
    [record] = connector.read_opportunities(["2"])
    assert record.facts.owner.name == "New Rep"
    hs.add_deal("3", company="10", hubspot_owner_id="404")  # an owner HubSpot no longer has
    connector.read_opportunities(["3"])
    connector.read_opportunities(["3"])
    assert connector.api_calls["owners"] == 3  # one refresh per unknown owner, not per read
