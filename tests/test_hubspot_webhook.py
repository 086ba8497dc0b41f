"""POST /webhooks/hubspot: signatures, limits, and one short test per fixture."""

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
from webhooks import hubspot as view
from webhooks.hubspot_signature import (
    InvalidSignature,
    normalize_uri,
    v1_signature,
    v2_signature,
    v3_signature,
    verify,
)

FIXTURES = Path(__file__).parent / "fixtures" / "hubspot"
SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
URL = "http://localhost/webhooks/hubspot"


class RecordingIntake:
    """The queue boundary: records what the view submitted, or refuses like a Redis outage."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.batches: list[list[ChangeEvent]] = []

    def submit(self, events: Sequence[ChangeEvent]) -> int:
        if self.down:
            raise QueueUnavailable("redis down")
        self.batches.append(list(events))
        return len(events)

    @property
    def events(self) -> list[ChangeEvent]:
        return [e for batch in self.batches for e in batch]


class Extension:
    def __init__(self, settings: Settings, intake: RecordingIntake) -> None:
        self.settings = settings
        self.intake = intake

    def fields(self, crm: str) -> FieldMap:
        return FieldMap.for_crm(crm)


def make_app(intake: RecordingIntake | None = None, **settings: object) -> tuple[Flask, object]:
    app = Flask(__name__)
    ext = Extension(
        Settings(hubspot_client_secret=SECRET).replace(**settings), intake or RecordingIntake()
    )
    app.extensions["onstrategy"] = ext
    app.register_blueprint(view.bp)
    return app, ext


def signed(body: bytes, uri: str = URL, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time() * 1000) if timestamp is None else timestamp)
    return {
        "X-HubSpot-Signature-v3": v3_signature(SECRET, "POST", uri, body, stamp),
        "X-HubSpot-Request-Timestamp": stamp,
        "Content-Type": "application/json",
    }


def post(app: Flask, body: bytes, headers: dict[str, str] | None = None, path: str = ""):
    headers = signed(body, URL + path) if headers is None else headers
    return app.test_client().post("/webhooks/hubspot" + path, data=body, headers=headers)


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def deliver(name: str) -> list[ChangeEvent]:
    app, ext = make_app()
    response = post(app, fixture(name))
    assert response.status_code == 204
    return ext.intake.events


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
    with pytest.raises(InvalidSignature, match="5-minute"):
        verify(headers, SECRET, "POST", uri, body, now_ms=1693657560000 + 301_000)


# -- rejections ----------------------------------------------------------------


def test_bad_signature_is_401() -> None:
    app, ext = make_app()
    body = fixture("deal_creation")
    headers = signed(body) | {
        "X-HubSpot-Signature-v3": "AAAA" + signed(body)["X-HubSpot-Signature-v3"][4:]
    }
    assert post(app, body, headers).status_code == 401
    assert ext.intake.events == []


def test_body_changed_after_signing_is_401() -> None:
    app, _ = make_app()
    body = fixture("deal_creation")
    assert post(app, body.replace(b"697680835", b"697680836"), signed(body)).status_code == 401


def test_stale_timestamp_is_401() -> None:
    app, _ = make_app()
    body = fixture("deal_creation")
    old = int(time.time() * 1000) - 6 * 60 * 1000
    assert post(app, body, signed(body, timestamp=old)).status_code == 401


@pytest.mark.parametrize("drop", ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"])
def test_missing_header_is_401(drop: str) -> None:
    app, _ = make_app()
    body = fixture("deal_creation")
    headers = signed(body)
    del headers[drop]
    assert post(app, body, headers).status_code == 401


def test_configured_public_url_is_what_is_signed() -> None:
    public = "https://hooks.example.com/webhooks/hubspot"
    app, _ = make_app(hubspot_webhook_url=public)
    body = fixture("deal_creation")
    assert post(app, body, signed(body, public + "?portal=1"), "?portal=1").status_code == 204
    assert post(app, body, signed(body, URL)).status_code == 401


def legacy_headers(body: bytes, version: str) -> dict[str, str]:
    sig = v1_signature(SECRET, body) if version == "v1" else v2_signature(SECRET, "POST", URL, body)
    return {"X-HubSpot-Signature": sig, "X-HubSpot-Signature-Version": version}


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_v1_v2_refused_unless_enabled(version: str) -> None:
    body = fixture("deal_creation")
    app, _ = make_app()
    assert post(app, body, legacy_headers(body, version)).status_code == 401
    app, ext = make_app(hubspot_allow_v1v2=True)
    assert post(app, body, legacy_headers(body, version)).status_code == 204
    assert len(ext.intake.events) == 1


def test_oversized_body_is_413_before_verifying() -> None:
    app, ext = make_app()
    body = b"[" + b" " * (1024 * 1024) + b"]"
    assert post(app, body, {}).status_code == 413
    assert ext.intake.events == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"eventId": 1}',
        b"[1, 2]",
        b'[{"subscriptionType": "deal.creation"}]',
        json.dumps(
            [
                {
                    "eventId": 1,
                    "subscriptionId": 2,
                    "portalId": 3,
                    "occurredAt": 4,
                    "subscriptionType": "deal.creation",
                }
            ]
        ).encode(),
    ],
    ids=["not-json", "not-a-list", "not-objects", "missing-common-fields", "missing-objectId"],
)
def test_malformed_is_400(body: bytes) -> None:
    app, ext = make_app()
    assert post(app, body).status_code == 400
    assert ext.intake.events == []


def test_more_than_100_events_is_400() -> None:
    event = json.loads(fixture("deal_creation"))[0]
    body = json.dumps([event | {"eventId": i} for i in range(101)]).encode()
    app, _ = make_app()
    assert post(app, body).status_code == 400


def test_queue_down_is_503() -> None:
    app, _ = make_app(intake=RecordingIntake(down=True))
    assert post(app, fixture("deal_creation")).status_code == 503


def test_redelivery_has_the_same_key() -> None:
    first = deliver("deal_propertyChange__amount")
    again = json.loads(fixture("deal_propertyChange__amount"))
    again[0]["attemptNumber"] = 3
    app, ext = make_app()
    assert post(app, json.dumps(again).encode()).status_code == 204
    assert ext.intake.events[0].key == first[0].key
    assert first[0].key.startswith("hubspot:") and len(first[0].key) == len("hubspot:") + 64


def test_different_values_have_different_keys() -> None:
    event = json.loads(fixture("deal_propertyChange__amount"))[0]
    keys = {view.change(event | {"propertyValue": v}, "opportunity", 1).key for v in "12"}
    assert len(keys) == 2


# -- one test per fixture ------------------------------------------------------


def test_supported_events_declared() -> None:
    assert set(view.SUPPORTED_EVENTS) >= {
        "deal.creation",
        "deal.propertyChange",
        "deal.associationChange",
        "deal.merge",
        "deal.restore",
        "deal.deletion",
        "company.propertyChange",
        "object.propertyChange",
    }
    assert "contact.creation" not in view.SUPPORTED_EVENTS


@pytest.mark.parametrize(
    "name",
    [
        "deal_creation",
        "deal_restore",
        "deal_propertyChange__dealstage",
        "object_propertyChange__0-3_dealstage",
    ],
)
def test_deal_events_re_evaluate_the_deal(name: str) -> None:
    [event] = deliver(name)
    assert (event.crm, event.kind, event.object_id) == ("hubspot", "opportunity", "697680835")
    assert event.occurred_at.startswith("2019-04-24T08:")


def test_deal_propertyChange__amount() -> None:
    [event] = deliver("deal_propertyChange__amount")
    assert event.kind == "opportunity" and event.changed_fields == ("amount",)
    assert event.source == "hubspot:deal.propertyChange"
    assert event.extra["portalId"] == "5799819"


def test_deal_deletion() -> None:
    [event] = deliver("deal_deletion")
    assert (event.kind, event.object_id) == ("deleted", "697680835")


def test_deal_merge() -> None:
    events = deliver("deal_merge")
    assert [(e.kind, e.object_id) for e in events] == [
        ("opportunity", "697680835"),
        ("deleted", "697680999"),
    ]
    assert len({e.key for e in events}) == 2


@pytest.mark.parametrize(
    "name", ["deal_associationChange__DEAL_TO_COMPANY", "deal_associationChange__DEAL_TO_LINE_ITEM"]
)
def test_deal_association_change(name: str) -> None:
    [event] = deliver(name)
    assert (event.kind, event.object_id) == ("opportunity", "697680835")


@pytest.mark.parametrize(
    "name",
    [
        "company_propertyChange__hs_is_target_account",
        "company_propertyChange__industry",
        "company_propertyChange__numberofemployees",
    ],
)
def test_company_change_is_an_account_event(name: str) -> None:
    [event] = deliver(name)
    assert (event.kind, event.object_id) == ("account", "3001")
    assert event.changed_fields == (name.split("__")[1],)


@pytest.mark.parametrize(
    "name",
    [
        "deal_propertyChange__strategy_fit",  # our own output: would loop
        "deal_propertyChange__description",  # not read by the rules
        "deal_associationChange__DEAL_TO_CONTACT",
        "company_propertyChange__phone",
        "contact_creation",
        "object_propertyChange__0-5_subject",
    ],
)
def test_ignored_events_are_acknowledged_and_not_queued(name: str) -> None:
    app, ext = make_app()
    assert post(app, fixture(name)).status_code == 204
    assert ext.intake.batches == []


def test_renamed_output_property_is_still_dropped() -> None:
    fields = FieldMap.for_crm("hubspot", {"fit": "fit_tag"})
    event = json.loads(fixture("deal_propertyChange__strategy_fit"))[0]
    event["propertyName"] = "fit_tag"
    assert view.parse(json.dumps([event]).encode(), fields) == []
