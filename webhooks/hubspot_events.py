"""HubSpot webhook events -> change events, one parser per subscription type. Pure.

A delivery is a JSON array of up to 100 events; each is judged on its own
(HubSpot retries a whole delivery on any 4xx, so one odd event must not refuse
99 good ones): a supported event that lacks what it needs is skipped and
reported, an event the service does not act on is ignored, and an event type
HubSpot does not document is reported as unknown. Only a body that is not a
list of objects, or over the limits, refuses the delivery.

Both subscription formats are routed: the per-object one (``deal.*``,
``company.*``, ``line_item.associationChange``) and the generic ``object.*``
one, which names the object type by id (``objectTypeId``; for association
events ``fromObjectTypeId`` and ``toObjectTypeId``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from integration.domain.events import ChangeEvent
from integration.domain.fields import WatchedFields
from webhooks.errors import Malformed

MAX_EVENTS = 100  # "Each request can contain up to 100 events"
DEAL, COMPANY, LINE_ITEM = "0-3", "0-2", "0-8"  # HubSpot object type ids
TYPE_NAMES = {DEAL: "DEAL", COMPANY: "COMPANY", LINE_ITEM: "LINE_ITEM"}
#: Associations whose change can alter a deal's decision (its company; its products).
DEAL_ASSOCIATIONS = frozenset({"DEAL_TO_COMPANY", "DEAL_TO_LINE_ITEM"})
#: Fields that identify one notification: redeliveries carry the same values
#: (``attemptNumber`` changes, so it is left out). Any may be absent.
KEY_FIELDS = (
    "portalId",
    "subscriptionId",
    "eventId",
    "objectId",
    "propertyName",
    "propertyValue",
    "occurredAt",
    "objectTypeId",
    "fromObjectId",
    "toObjectId",
    "fromObjectTypeId",
    "toObjectTypeId",
    "associationType",
    "associationTypeId",
    "associationRemoved",
    "primaryObjectId",
    "mergedObjectIds",
    "newObjectId",
)
MAX_ID = 2**63 - 1

Parser = Callable[[dict[str, Any], WatchedFields], list[ChangeEvent]]


@dataclass
class Delivery:
    """What one delivery asks for, and what became of each event (for the log and metrics).

    ``outcomes`` holds one ``(subscription type, outcome, why)`` per event, where
    outcome is ``accepted``, ``ignored``, ``malformed`` or ``unknown``.
    """

    events: list[ChangeEvent] = field(default_factory=list)
    outcomes: list[tuple[str, str, str]] = field(default_factory=list)


def parse_batch(document: Any, watched: WatchedFields) -> Delivery:
    """A subscription delivery (a JSON array of event objects), judged event by event."""
    if not isinstance(document, list) or not all(isinstance(e, dict) for e in document):
        raise Malformed("body is not a JSON array of event objects")
    if len(document) > MAX_EVENTS:
        raise Malformed(f"more than {MAX_EVENTS} events in one delivery")
    delivery = Delivery()
    for event in document:
        kind = event.get("subscriptionType")
        name = kind if isinstance(kind, str) and kind else "(none)"
        parser = EVENT_TO_PARSER.get(name)
        if parser is None:
            outcome = "ignored" if name in DOCUMENTED_EVENTS else "unknown"
            delivery.outcomes.append((name, outcome, ""))
            continue
        try:
            found = parser(event, watched)
        except Malformed as exc:
            delivery.outcomes.append((name, "malformed", exc.reason))
            continue
        delivery.events.extend(found)
        delivery.outcomes.append((name, "accepted" if found else "ignored", ""))
    return delivery


def change(event: dict, kind: str, object_id: str, fields: tuple[str, ...] = ()) -> ChangeEvent:
    """A change event keyed by the composite the reference recommends (``eventId``
    alone is not guaranteed unique, and ``subscriptionId`` may be absent)."""
    parts = [event.get(k) for k in KEY_FIELDS] + [kind, object_id]
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
    extra = {k: str(event[k]) for k in ("portalId", "changeSource", "sourceId") if k in event}
    return ChangeEvent(
        crm="hubspot",
        kind=kind,
        object_id=object_id,
        key=f"hubspot:{digest}",
        changed_fields=fields,
        occurred_at=_iso(event.get("occurredAt")),
        source=f"hubspot:{event['subscriptionType']}",
        extra=extra,
    )


def record_id(value: Any, name: str) -> str:
    """A HubSpot record id (a positive 64-bit integer, as a number or digits) as a string."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID:
        return str(value)
    raise Malformed(f"{name} is not a record id")


def _id(event: dict, name: str) -> str:
    return record_id(event.get(name), name)


def _text(event: dict, name: str) -> str:
    value = event.get(name)
    if not isinstance(value, str) or not value:
        raise Malformed(f"{name} is missing or not a string")
    return value


def _iso(ms: Any) -> str:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


# -- parsers, one per subscription type ---------------------------------------


def deal_changed(event: dict, watched: WatchedFields) -> list[ChangeEvent]:
    return [change(event, "opportunity", _id(event, "objectId"))]


def deal_deleted(event: dict, watched: WatchedFields) -> list[ChangeEvent]:
    return [change(event, "deleted", _id(event, "objectId"))]


def deal_property(event: dict, watched: WatchedFields) -> list[ChangeEvent]:
    """Only properties the rules read; the service's own outputs only echo its writes."""
    deal_id, name = _id(event, "objectId"), _text(event, "propertyName")
    if name in watched.own or name not in watched.opportunity:
        return []
    return [change(event, "opportunity", deal_id, (name,))]


def company_property(event: dict, watched: WatchedFields) -> list[ChangeEvent]:
    """Target-list flag and firmographics: every deal of the company is re-evaluated."""
    company_id, name = _id(event, "objectId"), _text(event, "propertyName")
    if name not in watched.account:
        return []
    return [change(event, "account", company_id, (name,))]


def deal_merge(event: dict, watched: WatchedFields) -> list[ChangeEvent]:
    """Evaluate the record the merge leaves; forget every merged id that no longer exists.

    HubSpot names the surviving record ``newObjectId`` when the merge created a
    new one, else the primary (``primaryObjectId``) survives.
    """
    survivor_field = "newObjectId" if event.get("newObjectId") is not None else "primaryObjectId"
    survivor = _id(event, survivor_field)
    merged = event.get("mergedObjectIds") or []
    if not isinstance(merged, list):
        raise Malformed("mergedObjectIds is not a list")
    ids = [record_id(i, "mergedObjectIds") for i in merged]
    if event.get("primaryObjectId") is not None:
        ids.insert(0, _id(event, "primaryObjectId"))
    gone = [i for i in dict.fromkeys(ids) if i != survivor]
    return [
        change(event, "opportunity", survivor),
        *(change(event, "deleted", i) for i in gone),
    ]


def legacy_association(event: dict, watched: WatchedFields) -> list[ChangeEvent]:
    """``deal.``/``company.``/``line_item.associationChange``: ``associationType`` names both ends.

    ``DEAL_TO_COMPANY`` / ``DEAL_TO_LINE_ITEM`` start from the deal;
    ``COMPANY_TO_DEAL`` / ``LINE_ITEM_TO_DEAL`` end at it.
    """
    kind = _text(event, "associationType")
    source, _, target = kind.partition("_TO_")
    if f"{source}_TO_{target}" in DEAL_ASSOCIATIONS:
        return [change(event, "opportunity", _id(event, "fromObjectId"), (kind,))]
    if f"{target}_TO_{source}" in DEAL_ASSOCIATIONS:
        return [change(event, "opportunity", _id(event, "toObjectId"), (f"{target}_TO_{source}",))]
    return []


def object_association(event: dict, watched: WatchedFields) -> list[ChangeEvent]:
    """``object.associationChange``: the ends are named by object type id, in either direction.

    Routed by the pair of types rather than by ``associationTypeId``: the
    primary and the unlabeled association (and any custom label) all fire, and
    every one of them is a change of the deal's company or products.
    """
    ends = {
        _text(event, "fromObjectTypeId"): "fromObjectId",
        _text(event, "toObjectTypeId"): "toObjectId",
    }
    other = next((t for t in ends if t != DEAL), None)
    if DEAL not in ends or other not in (COMPANY, LINE_ITEM):
        return []
    type_id = event.get("associationTypeId")
    if type_id is not None and (isinstance(type_id, bool) or not isinstance(type_id, int)):
        raise Malformed("associationTypeId is not a number")
    changed = f"DEAL_TO_{TYPE_NAMES[other]}"
    return [change(event, "opportunity", _id(event, ends[DEAL]), (changed,))]


def generic_object(action: str) -> Parser:
    """``object.<action>``: deals and companies routed like their own subscription types."""

    def parse_object(event: dict, watched: WatchedFields) -> list[ChangeEvent]:
        type_id = _text(event, "objectTypeId")
        parser = BY_OBJECT_TYPE.get((type_id, action))
        return parser(event, watched) if parser else []

    return parse_object


BY_OBJECT_TYPE: dict[tuple[str, str], Parser] = {
    (DEAL, "creation"): deal_changed,
    (DEAL, "restore"): deal_changed,
    (DEAL, "deletion"): deal_deleted,
    (DEAL, "propertyChange"): deal_property,
    (DEAL, "merge"): deal_merge,
    (COMPANY, "propertyChange"): company_property,
}

EVENT_TO_PARSER: dict[str, Parser] = {
    "deal.creation": deal_changed,
    "deal.restore": deal_changed,
    "deal.deletion": deal_deleted,
    "deal.propertyChange": deal_property,
    "deal.associationChange": legacy_association,
    "deal.merge": deal_merge,
    "company.propertyChange": company_property,
    "company.associationChange": legacy_association,
    "line_item.associationChange": legacy_association,
    "object.associationChange": object_association,
    **{
        f"object.{action}": generic_object(action)
        for action in ("creation", "deletion", "propertyChange", "merge", "restore")
    },
}

#: Subscription types that can produce work.
SUPPORTED_EVENTS: tuple[str, ...] = tuple(EVENT_TO_PARSER)

_OBJECTS = ("contact", "company", "deal", "ticket", "product", "line_item")
_ACTIONS = ("creation", "deletion", "propertyChange", "associationChange", "merge", "restore")
#: Every subscription type HubSpot documents; those not supported are ignored
#: quietly, anything else is reported as unknown (a new type, or a wrong sender).
DOCUMENTED_EVENTS: frozenset[str] = frozenset(
    {f"{o}.{a}" for o in _OBJECTS for a in _ACTIONS}
    | {f"object.{a}" for a in _ACTIONS}
    | {"contact.privacyDeletion", "object.privacyDeletion"}
    | {f"conversation.{a}" for a in ("creation", "deletion", "privacyDeletion")}
    | {"conversation.propertyChange", "conversation.newMessage"}
)
