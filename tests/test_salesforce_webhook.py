"""Salesforce webhooks: outbound messages (SOAP) and signed JSON events."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from webhook_app import build_app, metric, queued, queued_keys

from webhooks import salesforce_soap
from webhooks.salesforce import outbound_events, starts_no_work
from webhooks.signed_events import sign

FIXTURES = Path(__file__).parent / "fixtures" / "salesforce"
ORG = "00D5w000004qGTO"  # 15-character form on purpose: compared in 18
SECRET = "s3cret"
ACK = b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">'
INTEGRATION_USER = "0055w00000IntgrAAB"
OPPORTUNITY = "0065w000023STAmAAO"
EVENTS = "onstrategy_webhook_events_total"


def salesforce_app(folder: Path, **env: str):
    """The app for one org, as ``ONSTRATEGY_SALESFORCE_*`` settings configure it."""
    values = {
        "SALESFORCE_ORG_ID": ORG,
        "SALESFORCE_WEBHOOK_SECRET": SECRET,
        "SALESFORCE_INTEGRATION_USER_ID": INTEGRATION_USER,
        **env,
    }
    return build_app(folder, **values)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return salesforce_app(tmp_path_factory.mktemp("salesforce"))


@pytest.fixture
def queue(redis_conn):
    """The test Redis, empty before and after each test."""
    return redis_conn


@pytest.fixture
def client(app, queue):
    return app.test_client()


def post_xml(client, body: bytes):
    return client.post(
        "/webhooks/salesforce", data=body, headers={"Content-Type": "text/xml; charset=utf-8"}
    )


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def assert_fault(response, status: int) -> None:
    assert response.status_code == status
    assert response.content_type.startswith("text/xml")
    assert b"<soapenv:Fault>" in response.data
    assert b"<Ack>" not in response.data


# -- outbound messages ----------------------------------------------------


def test_one_notification_is_queued_then_acked(client, queue):
    response = post_xml(client, fixture("outbound_opportunity__one_notification.xml"))
    assert response.status_code == 200
    assert response.content_type.startswith("text/xml")
    assert ACK in response.data and b"<Ack>true</Ack>" in response.data
    assert queued(queue) == [("salesforce", "opportunity", OPPORTUNITY)]
    assert queued_keys(queue) == {OPPORTUNITY: "salesforce:04l5w00005286hAAAQ"}


def test_outbound_event_details():
    message = salesforce_soap.parse(fixture("outbound_opportunity__one_notification.xml"))
    [event] = outbound_events(message, frozenset()).events
    assert event.occurred_at == "2020-05-09T03:04:32.000Z"
    assert event.source == "salesforce:outbound"
    assert event.extra["sobject"] == "Opportunity"
    assert event.extra["action_id"] == "04k5w000000TSwMAAW"


def test_two_notifications_15_char_ids_become_18(client, queue):
    response = post_xml(client, fixture("outbound_opportunity__two_notifications.xml"))
    assert response.status_code == 200
    assert queued_keys(queue) == {
        OPPORTUNITY: "salesforce:04l5w00005286hAAAQ",
        "0065w000023STAnAAO": "salesforce:04l5w00005286hBAAQ",
    }


def test_account_target_flag_change_is_an_account_event(client, queue):
    response = post_xml(client, fixture("outbound_account__target_flag.xml"))
    assert response.status_code == 200
    assert queued(queue) == [("salesforce", "account", "0015w00002BFDeLAAX")]


@pytest.mark.parametrize(
    ("name", "opportunity"),
    [
        ("outbound_opportunity_line_item.xml", OPPORTUNITY),
        ("outbound_opportunity_contact_role.xml", "0065w000023STAnAAO"),
    ],
)
def test_child_record_re_evaluates_its_opportunity(client, queue, name, opportunity):
    """A product or contact role changed: the opportunity it names is evaluated again."""
    response = post_xml(client, fixture(name))
    assert response.status_code == 200 and b"<Ack>true</Ack>" in response.data
    assert queued(queue) == [("salesforce", "opportunity", opportunity)]


def test_child_record_without_its_opportunity_is_skipped_and_counted(app, client, queue):
    line_item = fixture("outbound_opportunity_line_item.xml").decode()
    start = line_item.index("<Notification>")
    end = line_item.index("</Notification>") + len("</Notification>")
    broken = line_item[start:end].replace("<sf:OpportunityId>", "<sf:Other>")
    broken = broken.replace("</sf:OpportunityId>", "</sf:Other>").replace("hCAAQ", "hEAAQ")
    opportunity = fixture("outbound_opportunity__one_notification.xml").decode()
    good = opportunity[opportunity.index("<Notification>") : opportunity.index("</Notification>")]
    body = line_item[:start] + broken + good + "</Notification>" + line_item[end:]
    labels = {"source": "salesforce", "type": "OpportunityLineItem", "outcome": "malformed"}
    before = metric(app, EVENTS, **labels)
    response = post_xml(client, body.encode())
    assert response.status_code == 200 and b"<Ack>true</Ack>" in response.data
    assert queued(queue) == [("salesforce", "opportunity", OPPORTUNITY)]
    assert metric(app, EVENTS, **labels) == before + 1


def test_wrong_org_is_refused_with_a_fault(client, queue):
    assert_fault(post_xml(client, fixture("outbound__wrong_org.xml")), 403)
    assert queued(queue) == []


def test_external_entity_is_refused_without_reading_the_file(client, queue):
    response = post_xml(client, fixture("outbound__external_entity.xml"))
    assert_fault(response, 400)
    assert b"root:" not in response.data
    assert queued(queue) == []


def test_billion_laughs_is_refused_before_expansion(client, queue):
    started = time.monotonic()
    assert_fault(post_xml(client, fixture("outbound__billion_laughs.xml")), 400)
    assert time.monotonic() - started < 2
    assert queued(queue) == []


def test_malformed_xml_is_refused(client, queue):
    assert_fault(post_xml(client, fixture("outbound__malformed.xml")), 400)
    assert queued(queue) == []


def test_101_notifications_are_refused(client, queue):
    text = fixture("outbound_opportunity__one_notification.xml").decode()
    start, end = text.index("<Notification>"), text.index("</Notification>") + 15
    body = text[:start] + text[start:end] * 101 + text[end:]
    assert_fault(post_xml(client, body.encode()), 400)
    assert queued(queue) == []


def test_queue_down_answers_503_fault_and_no_ack(tmp_path):
    app = salesforce_app(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    response = post_xml(app.test_client(), fixture("outbound_opportunity__one_notification.xml"))
    assert_fault(response, 503)


def test_body_over_one_mib_is_refused(client, queue):
    assert_fault(post_xml(client, b"<x>" + b" " * (1024 * 1024) + b"</x>"), 413)


def test_change_by_integration_user_is_acked_but_starts_no_work(tmp_path, client, queue):
    """``ONSTRATEGY_SALESFORCE_INTEGRATION_USER_ID`` (15 characters here, the message
    has 18) names the user whose changes are the service's own."""
    body = fixture("outbound_opportunity__one_notification.xml")
    own = salesforce_app(tmp_path, SALESFORCE_INTEGRATION_USER_ID="0055w00000BhqR0")
    response = post_xml(own.test_client(), body)
    assert response.status_code == 200 and b"<Ack>true</Ack>" in response.data
    assert queued(queue) == []
    assert post_xml(client, body).status_code == 200  # another integration user: queued
    assert queued(queue) == [("salesforce", "opportunity", OPPORTUNITY)]


def test_parse_keeps_field_values_and_nil():
    message = salesforce_soap.parse(fixture("outbound_opportunity__one_notification.xml"))
    [item] = message.notifications
    assert item.sobject_type == "Opportunity"
    assert item.fields["StageName"] == "Negotiation/Review"
    assert message.organization_id == "00D5w000004qGTOEA2"


# -- signed JSON events ---------------------------------------------------


def signed_post(client, payload: object, secret: str = SECRET, age: int = 0, raw: bytes = b""):
    body = raw or json.dumps(payload).encode()
    timestamp = str(int(time.time()) - age)
    return client.post(
        "/webhooks/salesforce/events",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-OnStrategy-Timestamp": timestamp,
            "X-OnStrategy-Signature": sign(secret, timestamp, body),
        },
    )


EVENT = {"id": "evt-1", "recordId": "0065w000023STAm", "changedFields": ["StageName"]}


def test_signed_event_is_queued(client, queue):
    response = signed_post(client, {"events": [EVENT]})
    assert response.status_code == 200
    assert response.json == {"queued": 1, "new": 1}
    assert queued_keys(queue) == {OPPORTUNITY: "salesforce:evt-1"}


def test_bad_signature_is_401(client, queue):
    assert signed_post(client, {"events": [EVENT]}, secret="wrong").status_code == 401
    assert queued(queue) == []


def test_missing_signature_is_401(client, queue):
    response = client.post("/webhooks/salesforce/events", json={"events": [EVENT]})
    assert response.status_code == 401


def test_stale_timestamp_is_401(client, queue):
    assert signed_post(client, {"events": [EVENT]}, age=301).status_code == 401
    assert queued(queue) == []


def test_replay_of_same_event_id_is_not_new(client, queue):
    assert signed_post(client, {"events": [EVENT]}).json == {"queued": 1, "new": 1}
    signed_post(client, {"events": [EVENT]})  # replayed before any worker planned it
    assert queued(queue) == [("salesforce", "opportunity", OPPORTUNITY)]  # one evaluation
    assert signed_post(client, {"events": [EVENT]}).json == {"queued": 1, "new": 0}


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"events": [{"id": "x"}]}',
        b'{"events": [{"id": "x", "recordId": "0065w000023STAm", "changedFields": "StageName"}]}',
        b'{"events": [{"id": {"x": 1}, "recordId": "0065w000023STAm"}]}',
        b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"events": [{"id": "x", "recordId": NaN}]}',
    ],
    ids=["not-json", "a-list", "no-record", "fields-a-string", "nested-id", "deep", "NaN"],
)
def test_malformed_events_are_400(client, queue, raw):
    response = signed_post(client, None, raw=raw)
    assert response.status_code == 400 and response.json["error"]
    assert queued(queue) == []


def test_event_changing_only_our_fields_starts_no_work(client, queue):
    own = {
        "id": "evt-2",
        "recordId": "0065w000023STAm",
        "changedFields": ["Strategy_Fit__c", "LastModifiedDate"],
    }
    response = signed_post(client, {"events": [own]})
    assert response.status_code == 200
    assert queued(queue) == []


def test_event_by_the_integration_user_starts_no_work(client, queue):
    mine = EVENT | {"modifiedBy": INTEGRATION_USER[:15]}
    assert signed_post(client, {"events": [mine]}).status_code == 200
    assert queued(queue) == []


def test_delete_event_and_account_event(client, queue):
    deleted = {"id": "e3", "recordId": "0065w000023STAm", "changeType": "DELETE"}
    account = {"id": "e4", "recordId": "0015w00002BFDeL", "changedFields": ["Industry"]}
    assert signed_post(client, {"events": [deleted, account]}).status_code == 200
    assert sorted(queued(queue)) == [
        ("salesforce", "account", "0015w00002BFDeLAAX"),
        ("salesforce", "deleted", OPPORTUNITY),
    ]


def test_loop_guard_is_pure():
    own = frozenset({"Strategy_Fit__c", "Comp_Eligible__c"})
    assert starts_no_work(["Comp_Eligible__c", "SystemModstamp"], own)
    assert not starts_no_work(["Comp_Eligible__c", "Amount"], own)
    assert not starts_no_work([], own)  # unknown changes always start work
    assert starts_no_work(["Amount"], own, INTEGRATION_USER[:15], INTEGRATION_USER)
