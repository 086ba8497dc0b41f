"""Salesforce webhooks: outbound messages (SOAP) and signed JSON events."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from flask import Flask

from integration.domain.events import ChangeEvent, QueueUnavailable
from integration.domain.fields import FieldMap
from integration.settings import Settings
from webhooks import salesforce_soap
from webhooks.salesforce import bp, starts_no_work
from webhooks.signed_events import sign

FIXTURES = Path(__file__).parent / "fixtures" / "salesforce"
ORG = "00D5w000004qGTO"  # 15-character form on purpose: compared in 18
SECRET = "s3cret"
ACK = b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">'
INTEGRATION_USER = "0055w00000IntgrAAB"


class RecordingIntake:
    """Fake at the boundary: records what the view queued."""

    def __init__(self) -> None:
        self.events: list[ChangeEvent] = []

    def submit(self, events: Sequence[ChangeEvent]) -> int:
        self.events += events
        return len(events)


class DownIntake:
    def submit(self, events: Sequence[ChangeEvent]) -> int:
        raise QueueUnavailable("redis down")


class Extension:
    def __init__(self, intake: object, integration_user: str = "") -> None:
        self.settings = Settings(salesforce_org_id=ORG, salesforce_webhook_secret=SECRET)
        self.intake = intake
        self.salesforce_integration_user_id = integration_user

    def fields(self, crm: str) -> FieldMap:
        return FieldMap.for_crm(crm)


def make_client(intake: object, integration_user: str = ""):
    app = Flask(__name__)
    app.register_blueprint(bp)
    app.extensions["onstrategy"] = Extension(intake, integration_user)
    return app.test_client()


@pytest.fixture
def intake() -> RecordingIntake:
    return RecordingIntake()


@pytest.fixture
def client(intake: RecordingIntake):
    return make_client(intake)


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


def test_one_notification_is_queued_then_acked(client, intake):
    response = post_xml(client, fixture("outbound_opportunity__one_notification.xml"))
    assert response.status_code == 200
    assert response.content_type.startswith("text/xml")
    assert ACK in response.data and b"<Ack>true</Ack>" in response.data
    [event] = intake.events
    assert event == ChangeEvent(
        crm="salesforce",
        kind="opportunity",
        object_id="0065w000023STAmAAO",
        key="salesforce:04l5w00005286hAAAQ",
        occurred_at="2020-05-09T03:04:32.000Z",
        source="salesforce:outbound",
        extra={"sobject": "Opportunity", "action_id": "04k5w000000TSwMAAW"},
    )


def test_two_notifications_15_char_ids_become_18(client, intake):
    response = post_xml(client, fixture("outbound_opportunity__two_notifications.xml"))
    assert response.status_code == 200
    assert [e.object_id for e in intake.events] == ["0065w000023STAmAAO", "0065w000023STAnAAO"]
    assert [e.key for e in intake.events] == [
        "salesforce:04l5w00005286hAAAQ",
        "salesforce:04l5w00005286hBAAQ",
    ]


def test_account_target_flag_change_is_an_account_event(client, intake):
    response = post_xml(client, fixture("outbound_account__target_flag.xml"))
    assert response.status_code == 200
    [event] = intake.events
    assert (event.kind, event.object_id) == ("account", "0015w00002BFDeLAAX")


def test_wrong_org_is_refused_with_a_fault(client, intake):
    assert_fault(post_xml(client, fixture("outbound__wrong_org.xml")), 403)
    assert intake.events == []


def test_external_entity_is_refused_without_reading_the_file(client, intake):
    response = post_xml(client, fixture("outbound__external_entity.xml"))
    assert_fault(response, 400)
    assert b"root:" not in response.data
    assert intake.events == []


def test_billion_laughs_is_refused_before_expansion(client, intake):
    started = time.monotonic()
    assert_fault(post_xml(client, fixture("outbound__billion_laughs.xml")), 400)
    assert time.monotonic() - started < 2
    assert intake.events == []


def test_malformed_xml_is_refused(client, intake):
    assert_fault(post_xml(client, fixture("outbound__malformed.xml")), 400)
    assert intake.events == []


def test_101_notifications_are_refused(client, intake):
    text = fixture("outbound_opportunity__one_notification.xml").decode()
    start, end = text.index("<Notification>"), text.index("</Notification>") + 15
    body = text[:start] + text[start:end] * 101 + text[end:]
    assert_fault(post_xml(client, body.encode()), 400)
    assert intake.events == []


def test_queue_down_answers_503_fault_and_no_ack():
    response = post_xml(
        make_client(DownIntake()), fixture("outbound_opportunity__one_notification.xml")
    )
    assert_fault(response, 503)


def test_body_over_one_mib_is_refused(client, intake):
    assert_fault(post_xml(client, b"<x>" + b" " * (1024 * 1024) + b"</x>"), 413)


def test_change_by_integration_user_is_acked_but_starts_no_work(intake):
    client = make_client(intake, integration_user="0055w00000BhqR0")
    response = post_xml(client, fixture("outbound_opportunity__one_notification.xml"))
    assert response.status_code == 200 and b"<Ack>true</Ack>" in response.data
    assert intake.events == []


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


def test_signed_event_is_queued(client, intake):
    response = signed_post(client, {"events": [EVENT]})
    assert response.status_code == 200
    [event] = intake.events
    assert (event.kind, event.object_id, event.key) == (
        "opportunity",
        "0065w000023STAmAAO",
        "salesforce:evt-1",
    )
    assert event.changed_fields == ("StageName",)
    assert event.source == "salesforce:event"


def test_bad_signature_is_401(client, intake):
    assert signed_post(client, {"events": [EVENT]}, secret="wrong").status_code == 401
    assert intake.events == []


def test_missing_signature_is_401(client, intake):
    response = client.post("/webhooks/salesforce/events", json={"events": [EVENT]})
    assert response.status_code == 401


def test_stale_timestamp_is_401(client, intake):
    assert signed_post(client, {"events": [EVENT]}, age=301).status_code == 401
    assert intake.events == []


def test_replay_of_same_event_id_has_the_same_key(client, intake):
    signed_post(client, {"events": [EVENT]})
    signed_post(client, {"events": [EVENT]})
    assert len({e.key for e in intake.events}) == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"events": [{"id": "x"}]}',
        b'{"events": [{"id": "x", "recordId": "0065w000023STAm", "changedFields": "StageName"}]}',
    ],
)
def test_malformed_events_are_400(client, intake, raw):
    assert signed_post(client, None, raw=raw).status_code == 400
    assert intake.events == []


def test_event_changing_only_our_fields_starts_no_work(client, intake):
    own = {
        "id": "evt-2",
        "recordId": "0065w000023STAm",
        "changedFields": ["Strategy_Fit__c", "LastModifiedDate"],
    }
    response = signed_post(client, {"events": [own]})
    assert response.status_code == 200
    assert intake.events == []


def test_delete_event_and_account_event():
    intake = RecordingIntake()
    deleted = {"id": "e3", "recordId": "0065w000023STAm", "changeType": "DELETE"}
    account = {"id": "e4", "recordId": "0015w00002BFDeL", "changedFields": ["Industry"]}
    signed_post(make_client(intake), {"events": [deleted, account]})
    assert [e.kind for e in intake.events] == ["deleted", "account"]


def test_loop_guard_is_pure():
    own = frozenset({"Strategy_Fit__c", "Comp_Eligible__c"})
    assert starts_no_work(["Comp_Eligible__c", "SystemModstamp"], own)
    assert not starts_no_work(["Comp_Eligible__c", "Amount"], own)
    assert not starts_no_work([], own)  # unknown changes always start work
    assert starts_no_work(["Amount"], own, INTEGRATION_USER[:15], INTEGRATION_USER)
