"""The Salesforce connector against the ``responses`` fake of the REST API."""

from __future__ import annotations

from datetime import date

import pytest
import requests
import responses

from connectors.base import (
    AuthError,
    Connector,
    FieldUpdate,
    NotFound,
    OpportunityQuery,
    RateLimited,
    RejectedError,
    TaskClose,
    TaskSpec,
    TransientError,
)
from connectors.config import ConfigError, SalesforceConfig
from connectors.salesforce import from_config
from integration.domain.fields import FieldMap
from sf_fake import SalesforceFake, sfid


@pytest.fixture
def org():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = SalesforceFake()
        fake.register(rsps)
        fake.register_login(rsps)
        yield fake


def seed(org: SalesforceFake, count: int) -> list[str]:
    manager = org.add_user("Maya Manager", Email="maya@acme.example")
    rep = org.add_user(
        "Rob Rep", Email="rob@acme.example", ManagerId=manager[:15], Department="Enterprise"
    )
    account = org.add_account(
        "Globex", Industry="Manufacturing", NumberOfEmployees=5000, Target_Account__c=True
    )
    return [
        org.add_opportunity(
            f"Deal {n}",
            account,
            rep,
            products=("Data Platform",),
            Amount=1000.0 * n,
            Probability=60,
            CloseDate="2026-12-01",
        )
        for n in range(count)
    ]


def test_connector_satisfies_the_protocol(org):
    assert isinstance(org.connector(), Connector)


def test_read_builds_facts_with_relationships_and_products(org):
    [oid] = seed(org, 1)
    [record] = org.connector().read_opportunities([oid[:15]])
    facts = record.facts
    assert facts.opportunity.id == oid and facts.opportunity.stage == "Prospecting"
    assert facts.opportunity.created_date == "2025-11-20"  # CreatedDate, as a UTC date
    assert facts.account.industry == "Manufacturing" and facts.account.employees == 5000
    assert facts.account.crm_target_flag is True
    assert facts.owner.team == "Enterprise" and len(facts.owner.manager_id) == 18
    assert facts.products == ("Data Platform",)
    assert facts.opportunity.currency == ""  # single-currency org: org currency
    assert record.current == {"fit": None, "reason": None, "warning": None, "comp_eligible": None}


def test_soql_selects_relationship_fields_and_products_subquery(org):
    [oid] = seed(org, 1)
    org.connector().read_opportunities([oid])
    soql = org.calls[0].params["q"]
    for column in (
        "Account.Industry",
        "Account.Target_Account__c",
        "Owner.ManagerId",
        "Owner.Department",
        "Strategy_Exception_Reason__c",
        "Comp_Eligible__c",
        "(SELECT Product2.Name FROM OpportunityLineItems)",
    ):
        assert column in soql
    assert "CurrencyIsoCode" not in soql
    assert soql.endswith(f"WHERE Id IN ('{oid}')")


def test_multi_currency_reads_currency(org):
    [oid] = seed(org, 1)
    org.opportunities[oid]["CurrencyIsoCode"] = "EUR"
    [record] = org.connector(multi_currency=True).read_opportunities([oid])
    assert record.facts.opportunity.currency == "EUR"


def test_missing_account_and_owner_are_null_safe(org):
    oid = org.add_opportunity("Orphan", Amount=None, Probability=None)
    [record] = org.connector().read_opportunities([oid])
    assert record.facts.account.name == "" and record.facts.owner.id == ""
    assert record.facts.opportunity.amount == 0.0 and record.facts.products == ()


def test_thousand_opportunities_cost_five_queries_five_updates(org):
    ids = seed(org, 1000)
    connector = org.connector()
    records = connector.read_opportunities(ids)
    results = connector.update_opportunities(
        [FieldUpdate(r.id, {"fit": "On Strategy", "comp_eligible": True}) for r in records]
    )
    assert len(records) == 1000 and all(r.ok for r in results)
    assert org.kinds().count("query") <= 5 and org.kinds().count("update") <= 5
    assert all(len(c.body["records"]) <= 200 for c in org.calls if c.kind == "update")
    assert org.opportunities[ids[0]]["Strategy_Fit__c"] == "On Strategy"
    assert connector.api_calls["query"] == 5 and connector.api_calls["update"] == 5


def test_paging_follows_next_records_url(org):
    org.page_size = 300
    seed(org, 700)
    pages = list(org.connector().iter_opportunities(OpportunityQuery(page_size=200)))
    assert sum(len(p) for p in pages) == 700 and max(len(p) for p in pages) <= 200
    assert org.kinds() == ["query", "query_more", "query_more"]
    ids = [r.id for p in pages for r in p]
    assert ids == sorted(ids)


def test_iter_filters_by_accounts_since_and_open(org):
    ids = seed(org, 3)
    org.opportunities[ids[0]].update(IsClosed=True, CloseDate="2025-01-01")
    org.opportunities[ids[1]].update(IsClosed=True, CloseDate="2026-11-01")
    query = OpportunityQuery(
        account_ids=[org.opportunities[ids[0]]["AccountId"][:15]],
        modified_since="2026-01-01T00:00:00Z",
        open_only=True,
        closed_after=date(2026, 10, 1),
    )
    found = [r.id for page in org.connector().iter_opportunities(query) for r in page]
    assert found == [ids[1], ids[2]]
    soql = org.calls[0].params["q"]
    assert "AccountId IN (" in soql and "LastModifiedDate >= 2026-01-01T00:00:00+00:00" in soql
    assert "(IsClosed = false OR CloseDate >= 2026-10-01)" in soql and soql.endswith("ORDER BY Id")


def test_validation_rule_failure_is_reported_per_record(org):
    ids = seed(org, 2)
    org.fail_record(ids[1], "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Close date required")
    results = org.connector().update_opportunities([FieldUpdate(i, {"fit": "x"}) for i in ids])
    assert results[0].ok and not results[1].ok and not results[1].retryable
    assert "Close date required" in results[1].error and results[1].ref == ids[1]


def test_row_lock_is_retried_then_succeeds(org):
    ids = seed(org, 2)
    org.fail_record(ids[0], "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access", times=2)
    results = org.connector().update_opportunities([FieldUpdate(i, {"fit": "x"}) for i in ids])
    assert all(r.ok for r in results)
    updates = [c for c in org.calls if c.kind == "update"]
    assert [len(c.body["records"]) for c in updates] == [2, 1, 1]


def test_row_lock_that_persists_is_retryable(org):
    [oid] = seed(org, 1)
    org.fail_record(oid, "UNABLE_TO_LOCK_ROW", "locked", times=10)
    [result] = org.connector(lock_retries=2).update_opportunities([FieldUpdate(oid, {"fit": "x"})])
    assert not result.ok and result.retryable


def test_expired_session_is_renewed_with_password_sign_in(org):
    [oid] = seed(org, 1)
    connector = org.password_connector()
    connector.read_opportunities([oid])
    org.expire_sessions()
    [record] = connector.read_opportunities([oid])
    assert record.id == oid
    assert org.kinds().count("login") == 2


def test_expired_access_token_is_an_auth_error(org):
    [oid] = seed(org, 1)
    org.expire_sessions()
    with pytest.raises(AuthError, match="cannot be renewed"):
        org.connector().read_opportunities([oid])


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (503, "SERVER_UNAVAILABLE", TransientError),
        (500, "", TransientError),
        (403, "REQUEST_LIMIT_EXCEEDED", RateLimited),
        (400, "UNABLE_TO_LOCK_ROW", TransientError),
        (403, "INSUFFICIENT_ACCESS", AuthError),
        (404, "NOT_FOUND", NotFound),
        (400, "INVALID_FIELD", RejectedError),
    ],
)
def test_errors_are_typed(org, status, code, error):
    [oid] = seed(org, 1)
    org.fail_next(status, code, "boom", times=3)  # transient ones outlast the call's retries
    with pytest.raises(error) as raised:
        org.connector(sleep=lambda seconds: None).read_opportunities([oid])
    assert raised.type is error and raised.value.status == status


def test_a_5xx_blip_is_retried_inside_the_call_but_a_create_never(org):
    [oid] = seed(org, 1)
    sleeps: list[float] = []
    connector = org.connector(sleep=sleeps.append)
    org.fail_next(503, "SERVER_UNAVAILABLE", "busy", times=2)
    assert [r.id for r in connector.read_opportunities([oid])] == [oid]
    assert sleeps == [0.5, 1.0] and connector.api_calls["query"] == 3
    manager = next(iter(org.users))
    org.fail_creates(503, commit=True)  # made, but the answer was an error
    with pytest.raises(TransientError):  # the job's retry adopts the task made
        connector.create_tasks(
            [TaskSpec("k0", oid, manager, "Coach", "Review fit", date(2026, 3, 1))]
        )
    assert connector.api_calls["create"] == 1 and len(org.tasks) == 1


def test_timeout_is_transient():
    with responses.RequestsMock() as rsps:
        rsps.add("GET", responses.matchers.re.compile(".*"), body=requests.Timeout("slow"))
        with pytest.raises(TransientError):
            SalesforceFake().connector().read_opportunities([sfid("006", 1)])


def test_tasks_are_created_in_collections_of_200(org):
    ids = seed(org, 450)
    manager = next(iter(org.users))
    specs = [
        TaskSpec(f"k{n}", oid, manager, "Coach", "Review fit", date(2026, 3, 1), "High")
        for n, oid in enumerate(ids)
    ]
    results = org.connector().create_tasks(specs)
    creates = [c for c in org.calls if c.kind == "create"]
    assert [len(c.body["records"]) for c in creates] == [200, 200, 50]
    assert all(r.ok and r.id.startswith("00T") for r in results) and results[0].ref == "k0"
    task = org.tasks[results[0].id]
    assert (
        task["WhatId"],
        task["OwnerId"],
        task["Status"],
        task["Priority"],
        task["ActivityDate"],
    ) == (ids[0], manager, "Not Started", "High", "2026-03-01")


def test_task_states_and_close(org):
    ids = seed(org, 1)
    user = next(iter(org.users))
    connector = org.connector()
    made = connector.create_tasks(
        [TaskSpec(f"k{n}", ids[0], user, "s", "Why", date(2026, 3, 1)) for n in range(3)]
    )
    open_id, done_id, gone_id = (r.id for r in made)
    org.tasks[done_id]["IsClosed"] = True
    org.tasks[gone_id]["IsDeleted"] = True
    states = connector.task_states([open_id, done_id[:15], gone_id, sfid("00T", 4242)])
    assert states == {
        open_id: "open",
        done_id[:15]: "completed",
        gone_id: "deleted",
        sfid("00T", 4242): "deleted",
    }
    assert "queryAll" in org.calls[-1].path
    [closed] = connector.close_tasks([TaskClose(open_id, "Now on strategy.")])
    assert closed.ok and org.tasks[open_id]["Status"] == "Completed"
    assert org.tasks[open_id]["Description"] == "Why\n\nNow on strategy."


def test_api_usage_is_recorded_and_warned(org, caplog):
    [oid] = seed(org, 1)
    org.api_limit = 1
    connector = org.connector()
    connector.read_opportunities([oid])
    assert connector.api_usage == (1, 1)
    assert "API usage" in caplog.text


def test_renamed_fields_are_used(org):
    [oid] = seed(org, 1)
    fields = FieldMap.for_crm("salesforce", {"fit": "Fit__c"})
    org.connector(fields=fields).update_opportunities([FieldUpdate(oid, {"fit": "On"})])
    assert org.opportunities[oid]["Fit__c"] == "On"


def test_from_config_needs_complete_credentials():
    with pytest.raises(ConfigError, match="_PRIVATE_KEY_FILE"):
        from_config(SalesforceConfig(username="u"), FieldMap.for_crm("salesforce"))
    connector = from_config(
        SalesforceConfig(instance_url="https://acme.my.salesforce.com", access_token="T"),
        FieldMap.for_crm("salesforce"),
    )
    assert connector.name == "salesforce"


def test_jwt_bearer_sign_in(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "key.pem").write_bytes(pem)
    config = SalesforceConfig(
        instance_url="https://acme.my.salesforce.com",
        client_id="3MVG9-client",
        private_key_file=str(tmp_path / "key.pem"),
        username="integration@acme.example",
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        org = SalesforceFake()
        org.register(rsps)
        token = rsps.add(
            "POST",
            "https://login.salesforce.com/services/oauth2/token",
            json={"access_token": "TOKEN", "instance_url": "https://acme.my.salesforce.com"},
        )
        [oid] = seed(org, 1)
        connector = from_config(config, FieldMap.for_crm("salesforce"))
        assert [r.id for r in connector.read_opportunities([oid])] == [oid]
        assert token.call_count == 1
