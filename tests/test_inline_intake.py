"""Without Redis, webhook work runs in-process before the answer; failures become 503."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import responses

from connectors.base import RejectedError, TransientError
from connectors.sandbox import SandboxConnector
from integration.app.factory import create_app
from integration.domain.events import ChangeEvent, QueueUnavailable
from integration.jobs.intake import InlineIntake
from integration.runtime import Runtime
from integration.settings import Settings
from sf_fake import SalesforceFake

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "salesforce"


def _event(key: str) -> ChangeEvent:
    return ChangeEvent(crm="sandbox", kind="opportunity", object_id="OPP-1", key=key)


@pytest.fixture
def inline(bind, runtime, sandbox):
    sandbox.add_opportunity("OPP-1", name="One", amount=10)
    bind(runtime)
    return InlineIntake(runtime)


def test_work_is_done_before_submit_returns_and_redelivery_is_skipped(inline, sandbox):
    assert inline.submit([_event("k1")]) == 1
    assert sandbox.opportunity_fields("OPP-1")["fit"] == "Off Strategy"
    reads = sandbox.api_calls["read_opportunities"]
    assert inline.submit([_event("k1")]) == 0
    assert sandbox.api_calls["read_opportunities"] == reads


class _Refusing(SandboxConnector):
    """The sandbox CRM refusing every read: a stand-in at the CRM boundary."""

    def read_opportunities(self, ids):
        raise RejectedError("sandbox", 400, body="INVALID_QUERY")


def test_failed_work_is_not_acknowledged_and_not_marked_seen(inline, runtime):
    runtime._connectors["sandbox"] = _Refusing(":memory:")
    with pytest.raises(QueueUnavailable):
        inline.submit([_event("k2")])
    assert runtime.store.unseen_events("sandbox", ["k2"]) == {"k2"}  # the retry is not skipped


@pytest.fixture
def salesforce_app(rules_dir, sqlite_url):
    """The real app without Redis, in front of the Salesforce fake (one deal, one owner)."""
    settings = Settings.from_env(
        {
            "ONSTRATEGY_RULES_DIR": str(rules_dir),
            "ONSTRATEGY_DATABASE_URL": sqlite_url,
            "ONSTRATEGY_CRM": "salesforce",
            "ONSTRATEGY_SALESFORCE_ORG_ID": "00D5w000004qGTO",
        }
    )
    fake = SalesforceFake()
    owner = fake.add_user("Dana Reyes", Id="0055w00000BhqR0AAJ", Email="dana@acme.example")
    account = fake.add_account("Shopright Stores", Id="0015w00002BFDeLAAX", Industry="Retail")
    fake.add_opportunity(
        "Shopright - Support Renewal",
        account,
        owner,
        Id="0065w000023STAmAAO",
        products=("Support Renewal",),
        Amount=250000.0,
        StageName="Negotiation",
        Probability=80,
        CloseDate="2027-01-15",
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.register(rsps)
        runtime = Runtime(settings, connectors={"salesforce": fake.connector()})
        assert runtime.redis is None
        yield create_app(runtime=runtime).test_client(), runtime, fake
        runtime.store.engine.dispose()


def test_transient_crm_failure_without_redis_answers_503_after_the_calls_retries(
    salesforce_app, caplog
):
    client, runtime, fake = salesforce_app
    body = (FIXTURES / "outbound_opportunity__one_notification.xml").read_bytes()
    # The CRM fails three calls in a row (more than a call's own two retries), then recovers.
    fake.fail_next(503, "SERVER_UNAVAILABLE", "busy", times=3)
    started = time.monotonic()
    response = client.post("/webhooks/salesforce", data=body, content_type="text/xml")
    elapsed = time.monotonic() - started
    assert response.status_code == 503 and b"<Ack>" not in response.data
    assert elapsed < 3.0  # the call's pauses (0.5 s, 1 s), no job backoff inside the request
    [failure] = [r for r in caplog.records if r.exc_info]
    assert isinstance(failure.exc_info[1], TransientError)  # the CRM's error
    key = "salesforce:04l5w00005286hAAAQ"
    assert runtime.store.unseen_events("salesforce", [key]) == {key}  # redelivery not skipped
    again = client.post("/webhooks/salesforce", data=body, content_type="text/xml")
    assert again.status_code == 200 and b"<Ack>true</Ack>" in again.data
    assert fake.opportunities["0065w000023STAmAAO"]["Strategy_Fit__c"] == "Off Strategy"
    assert runtime.store.unseen_events("salesforce", [key]) == set()
