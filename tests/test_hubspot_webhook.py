"""POST /webhooks/hubspot through the real app: signatures, limits, one test per fixture.

Each test posts a delivery, signed as HubSpot signs it, to the app ``create_app``
builds from test settings, and reads back what landed on the real queue.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import SHIPPED_RULES
from webhook_app import build_app, metric, queued, queued_keys

from webhooks.errors import NotAuthentic
from webhooks.hubspot_events import SUPPORTED_EVENTS, parse_batch
from webhooks.hubspot_signature import (
    normalize_uri,
    v1_signature,
    v2_signature,
    v3_signature,
    verify,
)

FIXTURES = Path(__file__).parent / "fixtures" / "hubspot"
SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
URL = "http://localhost/webhooks/hubspot"
DEAL, COMPANY = "697680835", "3001"
EVENTS = "onstrategy_webhook_events_total"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return build_app(tmp_path_factory.mktemp("hubspot"), HUBSPOT_CLIENT_SECRET=SECRET)


@pytest.fixture(scope="module")
def legacy_app(tmp_path_factory):
    """v1/v2 signatures enabled, as for workflow webhooks."""
    folder = tmp_path_factory.mktemp("hubspot-v1v2")
    return build_app(folder, HUBSPOT_CLIENT_SECRET=SECRET, HUBSPOT_ALLOW_V1V2="true")


@pytest.fixture
def queue(redis_conn):
    """The test Redis, empty before and after each test."""
    return redis_conn


def signed(body: bytes, uri: str = URL, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time() * 1000) if timestamp is None else timestamp)
    return {
        "X-HubSpot-Signature-v3": v3_signature(SECRET, "POST", uri, body, stamp),
        "X-HubSpot-Request-Timestamp": stamp,
        "Content-Type": "application/json",
    }


def legacy_headers(body: bytes, version: str) -> dict[str, str]:
    sig = v1_signature(SECRET, body) if version == "v1" else v2_signature(SECRET, "POST", URL, body)
    return {"X-HubSpot-Signature": sig, "X-HubSpot-Signature-Version": version}


def post(app, body: bytes, headers: dict[str, str] | None = None, path: str = ""):
    headers = signed(body, URL + path) if headers is None else headers
    return app.test_client().post("/webhooks/hubspot" + path, data=body, headers=headers)


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def events(name: str) -> list[dict]:
    return json.loads(fixture(name))


def deliver(app, queue, name: str) -> list[tuple[str, str, str]]:
    response = post(app, fixture(name))
    assert response.status_code == 204, response.get_data(as_text=True)
    return queued(queue)


# -- signature vectors (reference §2) ------------------------------------------


def test_v3_vector() -> None:
    body = b"{'example_field':'example_value'}"
    expected = "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="
    uri = "https://www.example.com/webhook_uri"
    assert v3_signature(SECRET, "POST", uri, body, "1693657560000") == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
            b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,'
            b'"changeSource":"CRM","changeFlag":"NEW","appId":54321}]',
            "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
        ),
        (
            b"{'example_field':'example_value'}",
            "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750",
        ),
    ],
)
def test_v1_vectors(body: bytes, expected: str) -> None:
    assert v1_signature(SECRET, body) == expected


@pytest.mark.parametrize(
    ("method", "body", "expected"),
    [
        ("GET", b"", "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"),
        (
            "POST",
            b'{"example_field":"example_value"}',
            "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900",
        ),
        (
            "POST",
            b"{'example_field':'example_value'}",
            "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383",
        ),
    ],
)
def test_v2_vectors(method: str, body: bytes, expected: str) -> None:
    assert v2_signature(SECRET, method, "https://www.example.com/webhook_uri", body) == expected


def test_uri_decoding_table_only() -> None:
    raw = "https://x.io/hook?a=%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B&b=%20%2B&c=%3a"
    assert normalize_uri(raw) == "https://x.io/hook?a=:/?@!$'()*,;&b=%20%2B&c=:"


def test_verify_v3_vector_with_frozen_clock() -> None:
    headers = {
        "X-HubSpot-Signature-v3": "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=",
        "X-HubSpot-Request-Timestamp": "1693657560000",
    }
    uri = "https://www.example.com/webhook_uri"
    body = b"{'example_field':'example_value'}"
    assert verify(headers, SECRET, "POST", uri, body, now_ms=1693657560000 + 299_000) == "v3"
    with pytest.raises(NotAuthentic, match="5-minute"):
        verify(headers, SECRET, "POST", uri, body, now_ms=1693657560000 + 301_000)


# -- refusals ------------------------------------------------------------------


def test_bad_signature_is_401(app, queue) -> None:
    body = fixture("deal_creation")
    good = signed(body)["X-HubSpot-Signature-v3"]
    headers = signed(body) | {"X-HubSpot-Signature-v3": "AAAA" + good[4:]}
    assert post(app, body, headers).status_code == 401
    assert queued(queue) == []


def test_body_changed_after_signing_is_401(app, queue) -> None:
    body = fixture("deal_creation")
    changed = body.replace(b"697680835", b"697680836")
    assert post(app, changed, signed(body)).status_code == 401
    assert queued(queue) == []


def test_stale_timestamp_is_401(app, queue) -> None:
    body = fixture("deal_creation")
    old = int(time.time() * 1000) - 6 * 60 * 1000
    assert post(app, body, signed(body, timestamp=old)).status_code == 401


@pytest.mark.parametrize("drop", ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"])
def test_missing_header_is_401(app, queue, drop: str) -> None:
    body = fixture("deal_creation")
    headers = signed(body)
    del headers[drop]
    assert post(app, body, headers).status_code == 401


def test_configured_public_url_is_what_is_signed(tmp_path, queue) -> None:
    public = "https://hooks.example.com/webhooks/hubspot"
    app = build_app(tmp_path, HUBSPOT_CLIENT_SECRET=SECRET, HUBSPOT_WEBHOOK_URL=public)
    body = fixture("deal_creation")
    assert post(app, body, signed(body, public + "?portal=1"), "?portal=1").status_code == 204
    assert post(app, body, signed(body, URL)).status_code == 401


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_v1_v2_refused_unless_enabled(app, legacy_app, queue, version: str) -> None:
    body = fixture("deal_creation")
    assert post(app, body, legacy_headers(body, version)).status_code == 401
    assert post(legacy_app, body, legacy_headers(body, version)).status_code == 204
    assert queued(queue) == [("hubspot", "opportunity", DEAL)]


def test_oversized_body_is_413_before_verifying(app, queue) -> None:
    body = b"[" + b" " * (1024 * 1024) + b"]"
    assert post(app, body, {}).status_code == 413
    assert queued(queue) == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe[]",
        b'"a string"',
        b"[1, 2]",
        b'[{"subscriptionType": "deal.creation", "objectId": 1}, []]',
        b"[" * 100_000 + b"]" * 100_000,
        b'[{"subscriptionType": "deal.creation", "objectId": NaN}]',
        b'[{"subscriptionType": "deal.creation", "objectId": 1' + b"0" * 5000 + b"}]",
    ],
    ids=[
        "not-json",
        "not-utf8",
        "a-string",
        "not-objects",
        "one-not-an-object",
        "nested-too-deep",
        "NaN",
        "5000-digit-number",
    ],
)
def test_a_body_that_is_not_a_list_of_objects_is_400(app, queue, body: bytes) -> None:
    response = post(app, body)
    assert response.status_code == 400
    assert response.is_json and "error" in response.json
    assert queued(queue) == []


def test_more_than_100_events_is_400(app, queue) -> None:
    event = events("deal_creation")[0]
    body = json.dumps([event | {"eventId": i} for i in range(101)]).encode()
    assert post(app, body).status_code == 400
    assert queued(queue) == []


def test_queue_down_is_503(tmp_path) -> None:
    app = build_app(tmp_path, HUBSPOT_CLIENT_SECRET=SECRET, REDIS_URL="redis://127.0.0.1:1/0")
    assert post(app, fixture("deal_creation")).status_code == 503


# -- each event on its own -----------------------------------------------------


def test_bad_events_are_skipped_and_counted_the_rest_queued(app, queue) -> None:
    """One delivery: good deal events, a bare contact event, a deal event without its
    deal, an id that is not an id, and a type HubSpot does not document."""
    before = {
        outcome: metric(app, EVENTS, source="hubspot", type=kind, outcome=outcome)
        for kind, outcome in [("deal.propertyChange", "malformed"), ("deal.teleport", "unknown")]
    }
    good = [*events("deal_creation"), *events("company_propertyChange__industry")]
    bad = [
        {"subscriptionType": "contact.creation"},  # ignored type: ignored, however bare
        {"subscriptionType": "deal.propertyChange", "propertyName": "amount"},  # no objectId
        {"subscriptionType": "deal.propertyChange", "propertyName": "amount", "objectId": {}},
        {"subscriptionType": "deal.teleport", "objectId": 1},
    ]
    response = post(app, json.dumps([bad[0], good[0], *bad[1:], good[1]]).encode())
    assert response.status_code == 204
    assert queued(queue) == [("hubspot", "opportunity", DEAL), ("hubspot", "account", COMPANY)]
    malformed = metric(
        app, EVENTS, source="hubspot", type="deal.propertyChange", outcome="malformed"
    )
    unknown = metric(app, EVENTS, source="hubspot", type="deal.teleport", outcome="unknown")
    assert malformed - before["malformed"] == 2
    assert unknown - before["unknown"] == 1


def test_an_event_without_common_fields_is_skipped_not_refused(app, queue) -> None:
    assert post(app, b'[{"subscriptionType": "deal.creation"}]').status_code == 204
    assert queued(queue) == []


def test_deal_associationChange__DEAL_TO_LINE_ITEM__no_subscriptionId(app, queue) -> None:
    name = "deal_associationChange__DEAL_TO_LINE_ITEM__no_subscriptionId"
    assert "subscriptionId" not in events(name)[0]
    assert deliver(app, queue, name) == [("hubspot", "opportunity", DEAL)]


def test_dedupe_key_without_subscriptionId(app, queue) -> None:
    """A redelivery (only ``attemptNumber`` differs) has the same key; another event does not."""
    event = events("deal_associationChange__DEAL_TO_LINE_ITEM__no_subscriptionId")[0]
    keys = []
    for variant in (event, event | {"attemptNumber": 3}, event | {"eventId": 2027}):
        assert post(app, json.dumps([variant]).encode()).status_code == 204
        keys.append(queued_keys(queue)[DEAL])
        queue.flushdb()
    assert keys[0] == keys[1] != keys[2]
    assert keys[0].startswith("hubspot:") and len(keys[0]) == len("hubspot:") + 64


def test_supported_events_declared() -> None:
    assert set(SUPPORTED_EVENTS) >= {
        "deal.creation",
        "deal.propertyChange",
        "deal.associationChange",
        "deal.merge",
        "deal.restore",
        "deal.deletion",
        "company.propertyChange",
        "company.associationChange",
        "object.propertyChange",
        "object.associationChange",
        "object.merge",
    }
    assert "contact.creation" not in SUPPORTED_EVENTS


# -- one test per fixture ------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "deal_creation",
        "deal_restore",
        "deal_propertyChange__dealstage",
        "deal_propertyChange__amount",
        "object_propertyChange__0-3_dealstage",
    ],
)
def test_deal_events_re_evaluate_the_deal(app, queue, name: str) -> None:
    assert deliver(app, queue, name) == [("hubspot", "opportunity", DEAL)]


def test_event_details(app) -> None:
    [event] = parse_batch(
        events("deal_propertyChange__amount"), app.extensions["onstrategy"].watched("hubspot")
    ).events
    assert event.changed_fields == ("amount",)
    assert event.source == "hubspot:deal.propertyChange"
    assert event.extra["portalId"] == "5799819"
    assert event.occurred_at.startswith("2019-04-24T08:")


def test_deal_deletion(app, queue) -> None:
    assert deliver(app, queue, "deal_deletion") == [("hubspot", "deleted", DEAL)]


@pytest.mark.parametrize("name", ["deal_merge", "object_merge__0-3"])
def test_merge_evaluates_the_primary_and_forgets_the_merged(app, queue, name: str) -> None:
    assert deliver(app, queue, name) == [
        ("hubspot", "opportunity", DEAL),
        ("hubspot", "deleted", "697680999"),
    ]


def test_deal_merge__newObjectId(app, queue) -> None:
    """The merge created a new deal: evaluate it, forget the primary and the merged one."""
    assert deliver(app, queue, "deal_merge__newObjectId") == [
        ("hubspot", "opportunity", "697681234"),
        ("hubspot", "deleted", DEAL),
        ("hubspot", "deleted", "697680999"),
    ]


@pytest.mark.parametrize(
    "name",
    [
        "deal_associationChange__DEAL_TO_COMPANY",
        "deal_associationChange__DEAL_TO_LINE_ITEM",
        "company_associationChange__COMPANY_TO_DEAL",
        "line_item_associationChange__LINE_ITEM_TO_DEAL",
        "object_associationChange__0-3_to_0-2",
        "object_associationChange__0-2_to_0-3",
        "object_associationChange__0-3_to_0-8",
        "object_associationChange__0-8_to_0-3",
    ],
)
def test_association_change_re_evaluates_the_deal(app, queue, name: str) -> None:
    assert deliver(app, queue, name) == [("hubspot", "opportunity", DEAL)]


def test_object_associationChange_without_object_types_is_skipped(app, queue) -> None:
    event = events("object_associationChange__0-3_to_0-2")[0]
    del event["fromObjectTypeId"]
    good = events("deal_creation")[0] | {"objectId": 42}
    assert post(app, json.dumps([event, good]).encode()).status_code == 204
    assert queued(queue) == [("hubspot", "opportunity", "42")]


@pytest.mark.parametrize(
    "name",
    [
        "company_propertyChange__hs_is_target_account",
        "company_propertyChange__industry",
        "company_propertyChange__numberofemployees",
    ],
)
def test_company_change_is_an_account_event(app, queue, name: str) -> None:
    assert deliver(app, queue, name) == [("hubspot", "account", COMPANY)]


@pytest.mark.parametrize(
    "name",
    [
        "deal_propertyChange__strategy_fit",  # our own output: would loop
        "deal_propertyChange__description",  # not read by the rules
        "deal_associationChange__DEAL_TO_CONTACT",
        "object_associationChange__0-3_to_0-1",
        "company_propertyChange__phone",
        "contact_creation",
        "object_propertyChange__0-5_subject",
    ],
)
def test_ignored_events_are_acknowledged_and_not_queued(app, queue, name: str) -> None:
    assert deliver(app, queue, name) == []


def test_renamed_output_property_is_still_dropped(tmp_path, queue) -> None:
    shutil.copytree(SHIPPED_RULES, tmp_path / "rules")
    rule_file = tmp_path / "rules" / "strategy.yaml"
    text = rule_file.read_text().replace("fields: {}", "fields: {hubspot: {fit: fit_tag}}")
    rule_file.write_text(text)
    app = build_app(tmp_path, HUBSPOT_CLIENT_SECRET=SECRET)
    event = events("deal_propertyChange__strategy_fit")[0] | {"propertyName": "fit_tag"}
    assert post(app, json.dumps([event]).encode()).status_code == 204
    assert queued(queue) == []


# -- workflow "Send a webhook" -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("workflow__deal", ("hubspot", "opportunity", DEAL)),
        ("workflow__deal_properties", ("hubspot", "opportunity", DEAL)),
        ("workflow__company", ("hubspot", "account", COMPANY)),
    ],
)
def test_workflow_webhook_queues_the_record(legacy_app, queue, name, expected) -> None:
    body = fixture(name)
    assert post(legacy_app, body, legacy_headers(body, "v2")).status_code == 204
    assert queued(queue) == [expected]


def test_workflow_webhook_needs_a_signature_the_service_accepts(app, queue) -> None:
    body = fixture("workflow__deal")
    assert post(app, body, legacy_headers(body, "v2")).status_code == 401
    assert post(app, body).status_code == 204  # v3, where the sender signs with it
    assert queued(queue) == [("hubspot", "opportunity", DEAL)]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"hs_object_id": "3001", "objectType": "company"}, ("hubspot", "account", "3001")),
        ({"hs_object_id": 42, "objectTypeId": "0-3"}, ("hubspot", "opportunity", "42")),
        ({"properties": {"hs_object_id": {"value": "7"}, "dealstage": {"value": "x"}}}, None),
    ],
)
def test_workflow_object_type_declared_or_inferred(legacy_app, queue, document, expected) -> None:
    body = json.dumps(document).encode()
    assert post(legacy_app, body, legacy_headers(body, "v2")).status_code == 204
    assert queued(queue) == [expected or ("hubspot", "opportunity", "7")]


@pytest.mark.parametrize(
    "document",
    [
        {"dealname": "no id"},
        {"hs_object_id": "12", "closedate": "2020-01-01"},  # deal or company?
        {"hs_object_id": "12", "objectType": "ticket"},
        {"hs_object_id": ["12"], "dealname": "x"},
    ],
    ids=["no-id", "ambiguous", "other-object", "odd-id"],
)
def test_workflow_body_the_service_cannot_use_is_400(legacy_app, queue, document) -> None:
    body = json.dumps(document).encode()
    response = post(legacy_app, body, legacy_headers(body, "v2"))
    assert response.status_code == 400 and response.json["error"]
    assert queued(queue) == []
