"""HubSpot end to end: signed webhook in -> Redis -> worker -> properties and tasks.

The real app and blueprint, real Redis and an RQ worker, and the real
``hubspot-api-client`` against the local fake of the documented endpoints.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from fakes.hubspot_server import FakeHubSpot
from integration.app.factory import create_app
from integration.jobs.queues import make_queue
from integration.jobs.worker import Worker
from integration.runtime import Runtime
from integration.settings import Settings
from integration.store.database import Store
from webhooks.hubspot_signature import v3_signature

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "hubspot"
SECRET = "client-secret"
URL = "http://localhost/webhooks/hubspot"
DEAL = "697680835"  # the deal in the property-change fixtures
REP, MANAGER = "7", "8"

#: HubSpot API calls one deal event may cost. Cold: the worker's first event also
#: reads owners, pipelines and industry options (then cached). Warm: 5 batch reads
#: (deal, its company and line-item associations, companies, line items), 1 batch
#: update, the rep's open tasks and 1 task create. Ceilings, kept as measured.
CALLS_PER_EVENT_COLD = 10
CALLS_PER_EVENT_WARM = 8


@pytest.fixture
def world(tmp_path, redis_conn, redis_url):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    with open(rules / "managers.csv", "a", encoding="utf-8") as handle:
        handle.write(f"hubspot,{REP},{MANAGER}\n")
    with FakeHubSpot(token="secret-token") as hs:
        hs.add_owner(
            REP,
            "Ada",
            "Lovelace",
            "ada@example.com",
            teams=[{"id": "2", "name": "Enterprise East", "primary": True}],
        )
        hs.add_owner(MANAGER, "Grace", "Hopper", "grace@example.com")
        hs.add_company("10", name="Shopright Stores", industry="RETAIL", numberofemployees="400")
        hs.add_deal(
            DEAL,
            company="10",
            line_items=("Support Renewal",),
            amount="250000",
            dealstage="contractsent",
            pipeline="default",
            hubspot_owner_id=REP,
            closedate="2027-01-31T00:00:00.000Z",
            hs_is_closed="false",
        )
        settings = Settings.from_env(
            {
                "ONSTRATEGY_RULES_DIR": str(rules),
                "ONSTRATEGY_REDIS_URL": redis_url,
                "ONSTRATEGY_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
                "ONSTRATEGY_CRM": "hubspot",
                "ONSTRATEGY_HUBSPOT_ACCESS_TOKEN": "secret-token",
                "ONSTRATEGY_HUBSPOT_CLIENT_SECRET": SECRET,
                "ONSTRATEGY_HUBSPOT_API_URL": hs.url,
            }
        )
        runtime = Runtime(settings, store=Store(settings.database_url), redis=redis_conn)
        app = create_app(runtime=runtime)
        yield app.test_client(), runtime, hs


def _post(client, name: str):
    body = (FIXTURES / name).read_bytes()
    stamp = str(int(time.time() * 1000))
    headers = {
        "X-HubSpot-Signature-v3": v3_signature(SECRET, "POST", URL, body, stamp),
        "X-HubSpot-Request-Timestamp": stamp,
        "Content-Type": "application/json",
    }
    return client.post("/webhooks/hubspot", data=body, headers=headers)


def _work(runtime) -> None:
    Worker(runtime).work(burst=True)


def test_signed_webhook_tags_the_deal_and_coaches_the_manager(world):
    client, runtime, hs = world
    assert _post(client, "deal_propertyChange__amount.json").status_code in (200, 204)
    assert make_queue(runtime.redis).count == 1
    _work(runtime)
    props = hs.deal_properties(DEAL)
    assert props["strategy_fit"] == "Off Strategy"
    assert props["comp_eligible"] == "false"
    assert "Contract Sent" in props["strategy_warning"]
    tasks = hs.tasks_for_deal(DEAL)
    assert tasks and {t["properties"]["hubspot_owner_id"] for t in tasks} == {MANAGER}
    assert "Ada Lovelace" in tasks[0]["properties"]["hs_task_subject"]


def test_redelivery_and_a_burst_change_nothing_new(world):
    client, runtime, hs = world
    _post(client, "deal_propertyChange__amount.json")
    _work(runtime)
    requests, tasks = len(hs.requests), len(hs.tasks_for_deal(DEAL))
    _post(client, "deal_propertyChange__amount.json")  # the same delivery again
    assert make_queue(runtime.redis).count == 0
    _work(runtime)
    assert len(hs.requests) == requests
    _post(client, "deal_propertyChange__dealstage.json")  # a new event, same deal, no change
    _work(runtime)
    assert len(hs.tasks_for_deal(DEAL)) == tasks
    assert not hs.calls("POST", "/crm/v3/objects/deals/batch/update")[1:]


def test_own_output_property_change_starts_no_work(world):
    client, runtime, _ = world
    response = _post(client, "deal_propertyChange__strategy_fit.json")
    assert response.status_code in (200, 204)
    assert make_queue(runtime.redis).count == 0


def test_bad_signature_queues_nothing(world):
    client, runtime, _ = world
    body = (FIXTURES / "deal_propertyChange__amount.json").read_bytes()
    stamp = str(int(time.time() * 1000))
    headers = {
        "X-HubSpot-Signature-v3": "bm90IGEgc2lnbmF0dXJl",
        "X-HubSpot-Request-Timestamp": stamp,
        "Content-Type": "application/json",
    }
    assert client.post("/webhooks/hubspot", data=body, headers=headers).status_code == 401
    assert make_queue(runtime.redis).count == 0


def test_api_calls_per_event_stay_under_the_ceiling(world):
    client, runtime, hs = world
    _post(client, "deal_propertyChange__amount.json")
    _work(runtime)
    cold = len(hs.requests)
    assert cold <= CALLS_PER_EVENT_COLD, [r.path for r in hs.requests]
    hs.add_deal(
        "555",
        company="10",
        line_items=("Data Platform",),
        amount="9000",
        dealstage="appointmentscheduled",
        pipeline="default",
        hubspot_owner_id=REP,
        hs_is_closed="false",
    )
    event = json.loads((FIXTURES / "deal_propertyChange__amount.json").read_text())
    event[0].update(objectId=555, eventId=777)
    body = json.dumps(event).encode()
    stamp = str(int(time.time() * 1000))
    client.post(
        "/webhooks/hubspot",
        data=body,
        headers={
            "X-HubSpot-Signature-v3": v3_signature(SECRET, "POST", URL, body, stamp),
            "X-HubSpot-Request-Timestamp": stamp,
            "Content-Type": "application/json",
        },
    )
    _work(runtime)
    warm = len(hs.requests) - cold
    assert warm <= CALLS_PER_EVENT_WARM, [r.path for r in hs.requests[cold:]]


def test_readyz_names_a_crm_whose_last_call_failed_authentication(world):
    client, runtime, hs = world
    assert client.get("/readyz").status_code == 200
    hs.token = "rotated-token"  # the service's token is revoked: every call answers 401
    _post(client, "deal_propertyChange__amount.json")
    _work(runtime)
    response = client.get("/readyz")
    assert response.status_code == 503
    [missing] = response.get_json()["missing"]
    assert missing.startswith("hubspot: authentication failed on its last call: hubspot")
    assert "401" in missing
    hs.token = "secret-token"  # the token is put right: the next call that works clears it
    _post(client, "deal_propertyChange__dealstage.json")
    _work(runtime)
    response = client.get("/readyz")
    assert response.status_code == 200 and response.get_json()["missing"] == []
