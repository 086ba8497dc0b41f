"""Salesforce end to end: outbound message in -> Redis -> worker -> fields and tasks.

The real app (``create_app``), real Redis and an RQ worker, the real
``simple-salesforce`` client against the ``responses`` fake of the REST API.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import responses
from redis import Redis

from integration.app.factory import create_app
from integration.jobs.queues import make_queue
from integration.jobs.worker import Worker
from integration.runtime import Runtime
from integration.settings import Settings
from integration.store.database import Store
from sf_fake import SalesforceFake

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "salesforce"
ORG = "00D5w000004qGTO"
OPP = "0065w000023STAmAAO"  # the opportunity in the one-notification fixture
ACCOUNT = "0015w00002BFDeLAAX"  # the account in the target-flag fixture
OWNER, MANAGER = "0055w00000BhqR0AAJ", "0055w00000BhqR1AAJ"


@pytest.fixture
def world(tmp_path, redis_conn, redis_url):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    settings = Settings.from_env(
        {
            "ONSTRATEGY_RULES_DIR": str(rules),
            "ONSTRATEGY_REDIS_URL": redis_url,
            "ONSTRATEGY_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
            "ONSTRATEGY_CRM": "salesforce",
            "ONSTRATEGY_SALESFORCE_ORG_ID": ORG,
        }
    )
    fake = SalesforceFake()
    fake.add_user(
        "Dana Reyes",
        Id=OWNER,
        Email="dana@acme.example",
        ManagerId=MANAGER,
        Department="Enterprise East",
    )
    fake.add_user("Morgan Blake", Id=MANAGER, Email="morgan@acme.example")
    account = fake.add_account(
        "Shopright Stores", Id=ACCOUNT, Industry="Retail", NumberOfEmployees=400
    )
    fake.add_opportunity(
        "Shopright - Support Renewal",
        account,
        OWNER,
        Id=OPP,
        products=("Support Renewal",),
        Amount=250000.0,
        StageName="Negotiation",
        Probability=80,
        CloseDate="2027-01-15",
    )
    store = Store(settings.database_url)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.register(rsps)
        runtime = Runtime(
            settings, store=store, redis=redis_conn, connectors={"salesforce": fake.connector()}
        )
        app = create_app(runtime=runtime)
        yield app.test_client(), runtime, fake


def _post(client, name: str):
    body = (FIXTURES / name).read_bytes()
    return client.post("/webhooks/salesforce", data=body, content_type="text/xml; charset=utf-8")


def _work(runtime) -> None:
    Worker(runtime).work(burst=True)


def test_outbound_message_tags_the_opportunity_and_coaches_the_manager(world):
    client, runtime, fake = world
    response = _post(client, "outbound_opportunity__one_notification.xml")
    assert response.status_code == 200 and b"<Ack>true</Ack>" in response.data
    assert make_queue(runtime.redis).count == 1
    _work(runtime)
    opp = fake.opportunities[OPP]
    assert opp["Strategy_Fit__c"] == "Off Strategy"
    assert opp["Comp_Eligible__c"] is False
    assert "Negotiation" in opp["Strategy_Warning__c"]
    tasks = [t for t in fake.tasks.values() if t["WhatId"] == OPP]
    assert tasks and all(t["OwnerId"] == MANAGER for t in tasks)
    assert runtime.store.latest("salesforce", OPP).fit == "Off Strategy"


def test_redelivered_message_changes_nothing(world):
    client, runtime, fake = world
    _post(client, "outbound_opportunity__one_notification.xml")
    _work(runtime)
    calls, tasks = len(fake.calls), len(fake.tasks)
    again = _post(client, "outbound_opportunity__one_notification.xml")
    assert b"<Ack>true</Ack>" in again.data
    assert make_queue(runtime.redis).count == 0
    _work(runtime)
    assert (len(fake.calls), len(fake.tasks)) == (calls, tasks)


@pytest.mark.parametrize(
    "fixture",
    [
        "outbound__external_entity.xml",
        "outbound__billion_laughs.xml",
        "outbound__malformed.xml",
        "outbound__wrong_org.xml",
    ],
)
def test_hostile_or_foreign_messages_queue_nothing(world, fixture):
    client, runtime, fake = world
    response = _post(client, fixture)
    assert 400 <= response.status_code < 500
    assert b"<Ack>" not in response.data
    assert make_queue(runtime.redis).count == 0
    assert fake.calls == []


def test_redis_down_answers_503_without_ack(world, tmp_path):
    client, runtime, _ = world
    runtime.redis.connection_pool.disconnect()
    state = client.application.extensions["onstrategy"]
    from integration.jobs.intake import RedisIntake

    state.intake = RedisIntake(Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    response = _post(client, "outbound_opportunity__one_notification.xml")
    assert response.status_code == 503
    assert b"<Ack>" not in response.data


def test_target_flag_change_on_the_account_makes_its_deals_comp_eligible(world):
    client, runtime, fake = world
    _post(client, "outbound_opportunity__one_notification.xml")
    _work(runtime)
    assert fake.opportunities[OPP]["Comp_Eligible__c"] is False
    fake.accounts[ACCOUNT]["Target_Account__c"] = True  # the admin ticks the box
    response = _post(client, "outbound_account__target_flag.xml")
    assert b"<Ack>true</Ack>" in response.data
    _work(runtime)
    assert fake.opportunities[OPP]["Comp_Eligible__c"] is True
    assert runtime.store.latest("salesforce", OPP).trigger == "account"


def test_daily_api_usage_seen_by_a_worker_is_on_metrics_of_another_process(world, tmp_path):
    client, runtime, fake = world
    _post(client, "outbound_opportunity__one_notification.xml")
    _work(runtime)
    web = create_app(Settings.from_env({**_env(runtime.settings), "ONSTRATEGY_CRM": "salesforce"}))
    text = web.test_client().get("/metrics").get_data(as_text=True)
    assert 'onstrategy_crm_api_daily_limit{crm="salesforce"} 100000.0' in text
    used = [line for line in text.splitlines() if line.startswith("onstrategy_crm_api_daily_used")]
    assert used and 0 < float(used[0].split()[-1]) <= len(fake.calls) + 1


def _env(settings: Settings) -> dict[str, str]:
    """The environment a second process (the web tier) would start with."""
    return {
        "ONSTRATEGY_RULES_DIR": settings.rules_dir,
        "ONSTRATEGY_REDIS_URL": settings.redis_url,
        "ONSTRATEGY_DATABASE_URL": settings.database_url,
        "ONSTRATEGY_SALESFORCE_ORG_ID": settings.salesforce_org_id,
    }
