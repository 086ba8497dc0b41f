"""``POST /webhooks/hubspot``: verify, parse, queue, answer. Nothing is decided here.

HubSpot posts a JSON array of at most 100 events and retries any non-2xx (or
a reply slower than 5 s) for 24 hours, so: events we deliberately ignore are
answered 2xx; 2xx is sent only after :meth:`Intake.submit` has durably queued
every event; a queue outage is 503 so HubSpot retries. Events are routed by
``subscriptionType`` through :data:`EVENT_TO_PARSER`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, request

from connectors.hubspot_facts import DEAL_PROPERTIES
from integration.domain.events import ChangeEvent, QueueUnavailable
from integration.domain.fields import FieldMap
from webhooks.hubspot_signature import InvalidSignature, verify

log = logging.getLogger(__name__)
bp = Blueprint("hubspot_webhook", __name__)

MAX_BODY = 1024 * 1024  # 1 MiB
MAX_EVENTS = 100  # "Each request can contain up to 100 events"
COMMON_FIELDS = ("eventId", "subscriptionId", "portalId", "occurredAt", "subscriptionType")
DEAL_TYPE_ID, COMPANY_TYPE_ID = "0-3", "0-2"
COMPANY_PROPERTIES = ("industry", "numberofemployees", "annualrevenue", "country", "name", "domain")
DEAL_ASSOCIATIONS = ("DEAL_TO_COMPANY", "DEAL_TO_LINE_ITEM")


class MalformedEvent(ValueError):
    """The delivery is not a HubSpot event batch (answered 400)."""


Parser = Callable[[dict[str, Any], FieldMap], list[ChangeEvent]]


@bp.post("/webhooks/hubspot")
def receive() -> Response | tuple[Any, int]:
    ext = current_app.extensions["onstrategy"]
    body = _read_body()
    if body is None:
        return {"error": "body over 1 MiB"}, 413
    try:
        verify(
            request.headers,
            ext.settings.hubspot_client_secret,
            request.method,
            _signed_uri(ext.settings),
            body,
            now_ms=int(time.time() * 1000),
            allow_v1v2=ext.settings.hubspot_allow_v1v2,
        )
    except InvalidSignature as exc:
        log.warning("hubspot webhook rejected: %s", exc)
        return {"error": "invalid signature"}, 401
    try:
        events = parse(body, _fields(ext))
    except MalformedEvent as exc:
        return {"error": str(exc)}, 400
    try:
        if events:
            ext.intake.submit(events)
    except QueueUnavailable:
        return {"error": "queue unavailable, retry later"}, 503
    return Response(status=204)


def _read_body() -> bytes | None:
    """The raw body, or None when over 1 MiB (checked before reading it all)."""
    if (request.content_length or 0) > MAX_BODY:
        return None
    body = request.stream.read(MAX_BODY + 1)
    return None if len(body) > MAX_BODY else body


def _signed_uri(settings: Any) -> str:
    """The public URL HubSpot called: the configured one behind a proxy, else what Flask saw."""
    if not settings.hubspot_webhook_url:
        return request.url
    query = request.query_string.decode("latin-1")
    return settings.hubspot_webhook_url + (f"?{query}" if query else "")


def _fields(ext: Any) -> FieldMap:
    fields = getattr(ext, "fields", None)
    return fields("hubspot") if callable(fields) else FieldMap.for_crm("hubspot")


def parse(body: bytes, fields: FieldMap) -> list[ChangeEvent]:
    """Every event of a delivery as change events; ignored ones contribute none."""
    try:
        events = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedEvent("body is not JSON") from None
    if not isinstance(events, list):
        raise MalformedEvent("body is not a JSON array of events")
    if len(events) > MAX_EVENTS:
        raise MalformedEvent(f"more than {MAX_EVENTS} events in one delivery")
    parsed: list[ChangeEvent] = []
    for event in events:
        _require(event, COMMON_FIELDS)
        parser = EVENT_TO_PARSER.get(event["subscriptionType"], ignore)
        parsed.extend(parser(event, fields))
    return parsed


def _require(event: Any, names: tuple[str, ...]) -> None:
    if not isinstance(event, dict):
        raise MalformedEvent("an event is not a JSON object")
    missing = [n for n in names if event.get(n) in (None, "")]
    if missing:
        raise MalformedEvent(f"event missing {', '.join(missing)}")


def change(event: dict, kind: str, object_id: Any, fields: tuple[str, ...] = ()) -> ChangeEvent:
    """A change event keyed by the composite the reference recommends (``eventId`` alone
    is not guaranteed unique); redeliveries of one notification get the same key."""
    parts = [
        event.get(k)
        for k in (
            "portalId",
            "subscriptionId",
            "eventId",
            "objectId",
            "propertyName",
            "propertyValue",
            "occurredAt",
        )
    ]
    parts += [kind, str(object_id)]
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
    extra = {k: str(event[k]) for k in ("portalId", "changeSource", "sourceId") if k in event}
    return ChangeEvent(
        crm="hubspot",
        kind=kind,
        object_id=str(object_id),
        key=f"hubspot:{digest}",
        changed_fields=fields,
        occurred_at=_iso(event.get("occurredAt")),
        source=f"hubspot:{event['subscriptionType']}",
        extra=extra,
    )


def _iso(ms: Any) -> str:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).isoformat()
    except (TypeError, ValueError, OverflowError):
        return ""


# -- parsers, one per subscription type ---------------------------------------


def ignore(event: dict, fields: FieldMap) -> list[ChangeEvent]:
    """Known (or new) types we do not act on: answered 2xx so HubSpot does not retry."""
    return []


def deal_changed(event: dict, fields: FieldMap) -> list[ChangeEvent]:
    _require(event, ("objectId",))
    return [change(event, "opportunity", event["objectId"])]


def deal_deleted(event: dict, fields: FieldMap) -> list[ChangeEvent]:
    _require(event, ("objectId",))
    return [change(event, "deleted", event["objectId"])]


def deal_property(event: dict, fields: FieldMap) -> list[ChangeEvent]:
    """Only properties the rules read; our own output properties only echo our writes."""
    _require(event, ("objectId", "propertyName"))
    name = event["propertyName"]
    own = {fields[n] for n in ("fit", "reason", "warning", "comp_eligible")}
    read = {*DEAL_PROPERTIES, fields["exception_reason"]}
    if name in own or name not in read:
        return []
    return [change(event, "opportunity", event["objectId"], (name,))]


def deal_merge(event: dict, fields: FieldMap) -> list[ChangeEvent]:
    """Re-evaluate the surviving deal; forget the ones merged into it."""
    _require(event, ("primaryObjectId",))
    merged = event.get("mergedObjectIds") or []
    if not isinstance(merged, list):
        raise MalformedEvent("mergedObjectIds is not a list")
    survivor = change(event, "opportunity", event["primaryObjectId"])
    gone = [change(event, "deleted", i) for i in merged if str(i) != str(event["primaryObjectId"])]
    return [survivor, *gone]


def deal_association(event: dict, fields: FieldMap) -> list[ChangeEvent]:
    _require(event, ("fromObjectId", "associationType"))
    if event["associationType"] not in DEAL_ASSOCIATIONS:
        return []
    return [change(event, "opportunity", event["fromObjectId"], (event["associationType"],))]


def company_association(event: dict, fields: FieldMap) -> list[ChangeEvent]:
    _require(event, ("toObjectId", "associationType"))
    if event["associationType"] != "COMPANY_TO_DEAL":
        return []
    return [change(event, "opportunity", event["toObjectId"], ("DEAL_TO_COMPANY",))]


def company_property(event: dict, fields: FieldMap) -> list[ChangeEvent]:
    """Target-list flag and firmographics: every deal of the company is re-evaluated."""
    _require(event, ("objectId", "propertyName"))
    name = event["propertyName"]
    if name not in (*COMPANY_PROPERTIES, fields["account_target"]):
        return []
    return [change(event, "account", event["objectId"], (name,))]


def generic_object(action: str) -> Parser:
    """``object.*`` subscriptions: route deals and companies like their own types."""

    def parse_object(event: dict, fields: FieldMap) -> list[ChangeEvent]:
        type_id = str(event.get("objectTypeId") or "")
        prefix = {DEAL_TYPE_ID: "deal", COMPANY_TYPE_ID: "company"}.get(type_id)
        parser = EVENT_TO_PARSER.get(f"{prefix}.{action}", ignore) if prefix else ignore
        return parser(event, fields)

    return parse_object


EVENT_TO_PARSER: dict[str, Parser] = {
    "deal.creation": deal_changed,
    "deal.restore": deal_changed,
    "deal.deletion": deal_deleted,
    "deal.propertyChange": deal_property,
    "deal.associationChange": deal_association,
    "deal.merge": deal_merge,
    "company.propertyChange": company_property,
    "company.associationChange": company_association,
    **{
        f"object.{action}": generic_object(action)
        for action in (
            "creation",
            "deletion",
            "propertyChange",
            "associationChange",
            "merge",
            "restore",
        )
    },
}

#: Subscription types that can produce work; everything else is acknowledged and ignored.
SUPPORTED_EVENTS: tuple[str, ...] = tuple(EVENT_TO_PARSER)
