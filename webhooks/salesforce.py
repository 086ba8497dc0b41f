"""Salesforce change notifications: Outbound Messages and signed JSON events.

Thin views: verify, parse, submit, answer. The Ack (or a 2xx) is sent only
after ``intake.submit`` has durably queued the work; when the queue is down the
answer is 503 so Salesforce (or the relay) delivers again. Deciding anything
is the worker's job: it re-reads the opportunity, because outbound messages
carry the latest values and arrive in no particular order.

What the views need comes through the app state
(``current_app.extensions["onstrategy"]``): ``settings`` (the org id, the
JSON-event secret and ``salesforce_integration_user_id``, whose changes start
no work), ``intake``, ``watched(crm)`` (the service's own output fields) and
``metrics.webhook_event``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from integration.domain.events import ChangeEvent, QueueUnavailable
from integration.domain.sfid import same, to18
from webhooks import salesforce_soap as soap
from webhooks import signed_events
from webhooks.body import load_json, read_body
from webhooks.errors import Malformed, NotAuthentic

log = logging.getLogger(__name__)
bp = Blueprint("salesforce", __name__)

#: Key prefix -> event kind (Salesforce "Working with Record IDs").
KIND_BY_PREFIX = {"006": "opportunity", "001": "account"}
KIND_BY_SOBJECT = {"Opportunity": "opportunity", "Account": "account"}
#: Records of an opportunity that change its decision (its products, its contacts):
#: a notification on one re-evaluates the opportunity named by this field.
PARENT_FIELD = {"OpportunityLineItem": "OpportunityId", "OpportunityContactRole": "OpportunityId"}
#: Audit fields every update changes; alone they say nothing about the decision.
AUDIT_FIELDS = frozenset({"LastModifiedDate", "LastModifiedById", "SystemModstamp"})


@dataclass
class Notifications:
    """The events one outbound message asks for, and each notification's outcome."""

    events: list[ChangeEvent] = field(default_factory=list)
    outcomes: list[tuple[str, str, str]] = field(default_factory=list)


# -- views ----------------------------------------------------------------


@bp.post("/webhooks/salesforce")
def outbound() -> Response | tuple[Response, int]:
    """Outbound Message: org checked, notifications queued, then the documented Ack."""
    ext = current_app.extensions["onstrategy"]
    try:
        message = soap.parse(read_body())
        soap.check_org(message, ext.settings.salesforce_org_id)
    except (Malformed, NotAuthentic) as exc:
        log.warning("salesforce outbound message refused: %s", exc.reason)
        return _soap(soap.fault("Client", exc.reason), exc.status)
    found = outbound_events(
        message, ext.watched("salesforce").own, ext.settings.salesforce_integration_user_id
    )
    try:
        _submit(ext, found.events)
    except QueueUnavailable:
        return _soap(soap.fault("Server", "queue unavailable; deliver again later"), 503)
    for sobject, outcome, _ in found.outcomes:
        ext.metrics.webhook_event("salesforce", sobject, outcome)
    return _soap(soap.ACK, 200)


@bp.post("/webhooks/salesforce/events")
def events() -> tuple[Response, int]:
    """Signed JSON events: signature, then shape, then queue."""
    ext = current_app.extensions["onstrategy"]
    try:
        body = read_body()
        signed_events.verify(
            ext.settings.salesforce_webhook_secret,
            request.headers.get("X-OnStrategy-Timestamp"),
            request.headers.get("X-OnStrategy-Signature"),
            body,
        )
        found = list(
            json_events(
                load_json(body),
                ext.watched("salesforce").own,
                ext.settings.salesforce_integration_user_id,
            )
        )
        new = _submit(ext, found)
    except (Malformed, NotAuthentic) as exc:
        log.warning("salesforce events refused: %s", exc.reason)
        return jsonify(error=exc.reason), exc.status
    except QueueUnavailable:
        return jsonify(error="queue unavailable; send again later"), 503
    return jsonify(queued=len(found), new=new), 200


def _submit(ext: Any, found: Sequence[ChangeEvent]) -> int:
    return ext.intake.submit(found) if found else 0


def _soap(text: str, status: int) -> Response:
    return Response(text, status=status, content_type=soap.CONTENT_TYPE)


# -- pure helpers ---------------------------------------------------------


def starts_no_work(
    changed_fields: Iterable[str],
    own_fields: frozenset[str],
    modified_by: str = "",
    integration_user: str = "",
) -> bool:
    """Loop guard: a change made by the integration user, or only to our output fields.

    The service writes only changed values, but each write is still an edit
    that fires the org's automation again (Salesforce "Setting Up Outbound
    Messaging": the circular loop). An empty change list means "unknown" and
    always starts work.
    """
    if integration_user and modified_by and same(modified_by, integration_user):
        return True
    changed = set(changed_fields) - AUDIT_FIELDS
    return bool(set(changed_fields)) and changed <= own_fields


def outbound_events(
    message: soap.OutboundMessage, own_fields: frozenset[str], integration_user: str = ""
) -> Notifications:
    """One event per supported notification; an outbound message lists values, not changes.

    A notification the service cannot act on is skipped on its own (and reported)
    so that the others are still queued and the message acknowledged.
    """
    found = Notifications()
    for item in message.notifications:
        sobject = item.sobject_type
        try:
            event = _outbound_event(message, item, own_fields, integration_user)
        except Malformed as exc:
            log.warning("salesforce outbound: skipped a %s notification: %s", sobject, exc.reason)
            found.outcomes.append((sobject, "malformed", exc.reason))
            continue
        if event is None:
            found.outcomes.append((sobject, "ignored", ""))
            continue
        found.events.append(event)
        found.outcomes.append((sobject, "accepted", ""))
    return found


def _outbound_event(
    message: soap.OutboundMessage,
    item: soap.Notification,
    own_fields: frozenset[str],
    integration_user: str,
) -> ChangeEvent | None:
    """The notification's event; ``None`` for what starts no work."""
    kind, record_id = _target(item)
    if kind is None:
        log.info("salesforce outbound: ignoring unsupported sObject %s", item.sobject_type)
        return None
    if starts_no_work((), own_fields, item.fields.get("LastModifiedById", ""), integration_user):
        return None
    return ChangeEvent(
        crm="salesforce",
        kind=kind,
        object_id=record_id,
        key=f"salesforce:{item.id}",
        occurred_at=item.fields.get("SystemModstamp", item.fields.get("LastModifiedDate", "")),
        source="salesforce:outbound",
        extra={
            "sobject": item.sobject_type,
            "action_id": message.action_id,
            "record": item.record_id,
        },
    )


def _target(item: soap.Notification) -> tuple[str | None, str]:
    """What to re-evaluate: the record itself, or the opportunity a child record names."""
    parent = PARENT_FIELD.get(item.sobject_type)
    if parent is None:
        return KIND_BY_SOBJECT.get(item.sobject_type), item.record_id
    value = item.fields.get(parent, "")
    if not _is_sfid(value) or not value.startswith("006"):
        raise Malformed(f"{parent} is missing or not an opportunity id (add it to the message)")
    return "opportunity", to18(value)


def json_events(
    document: Any, own_fields: frozenset[str], integration_user: str = ""
) -> Iterable[ChangeEvent]:
    """``{"events": [{"id", "recordId", "changedFields"}]}`` as change events.

    Optional per event: ``changeType`` (``DELETE`` forgets the record) and
    ``modifiedBy`` (the user who made the change, for the loop guard).
    """
    for raw in _event_list(document):
        event = _json_event(raw)
        if event is None:
            continue
        modified_by = _str(raw, "modifiedBy")
        if starts_no_work(event.changed_fields, own_fields, modified_by, integration_user):
            continue
        yield event


def _event_list(document: Any) -> list[Any]:
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise Malformed('body must be {"events": [...]}')
    return document["events"]


def _json_event(raw: Any) -> ChangeEvent | None:
    """The event, or ``None`` for a record type the service does not track."""
    if not isinstance(raw, dict):
        raise Malformed("each event must be an object")
    event_id, record_id = _str(raw, "id"), _str(raw, "recordId")
    if not event_id or not _is_sfid(record_id):
        raise Malformed("each event needs an id and a 15- or 18-character recordId")
    changed = raw.get("changedFields", [])
    if not isinstance(changed, list) or not all(isinstance(f, str) for f in changed):
        raise Malformed("changedFields must be a list of field names")
    kind = KIND_BY_PREFIX.get(record_id[:3])
    if kind is None:
        return None
    if _str(raw, "changeType").upper() == "DELETE":
        kind = "deleted"
    return ChangeEvent(
        crm="salesforce",
        kind=kind,
        object_id=to18(record_id),
        key=f"salesforce:{event_id}",
        changed_fields=tuple(changed),
        source="salesforce:event",
    )


def _is_sfid(value: str) -> bool:
    return len(value) in (15, 18) and value.isascii() and value.isalnum()


def _str(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise Malformed(f"{key} must be a string")
    return value.strip()
