"""Salesforce change notifications: Outbound Messages and signed JSON events.

Thin views: verify, parse, submit, answer. The Ack (or a 2xx) is sent only
after ``intake.submit`` has durably queued the work; when the queue is down the
answer is 503 so Salesforce (or the relay) delivers again. Deciding anything
is the worker's job: it re-reads the opportunity, because outbound messages
carry the latest values and arrive in no particular order.

The app puts an object into ``app.extensions["onstrategy"]`` with
``settings``, ``intake``, ``fields(crm)`` and, optionally,
``salesforce_integration_user_id`` (changes made by that user start no work).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from integration.domain.events import ChangeEvent, QueueUnavailable
from integration.domain.model import OUTPUT_FIELDS
from integration.domain.sfid import same, to18
from webhooks import salesforce_soap as soap
from webhooks import signed_events

log = logging.getLogger(__name__)
bp = Blueprint("salesforce", __name__)

MAX_BODY = 1024 * 1024
#: Key prefix -> event kind (Salesforce "Working with Record IDs").
KIND_BY_PREFIX = {"006": "opportunity", "001": "account"}
KIND_BY_SOBJECT = {"Opportunity": "opportunity", "Account": "account"}
#: Audit fields every update changes; alone they say nothing about the decision.
AUDIT_FIELDS = frozenset({"LastModifiedDate", "LastModifiedById", "SystemModstamp"})


class BadEvents(ValueError):
    """The JSON body is not the documented shape: answer 400."""


# -- views ----------------------------------------------------------------


@bp.post("/webhooks/salesforce")
def outbound() -> Response | tuple[Response, int]:
    """Outbound Message: org checked, notifications queued, then the documented Ack."""
    ext = current_app.extensions["onstrategy"]
    try:
        message = soap.parse(_body(soap.Rejected(413, "body over 1 MiB")))
        soap.check_org(message, ext.settings.salesforce_org_id)
    except soap.Rejected as exc:
        log.warning("salesforce outbound message refused: %s", exc.reason)
        return _soap(soap.fault("Client", exc.reason), exc.status)
    events = list(outbound_events(message, _own_fields(ext), _integration_user(ext)))
    try:
        _submit(ext, events)
    except QueueUnavailable:
        return _soap(soap.fault("Server", "queue unavailable; deliver again later"), 503)
    return _soap(soap.ACK, 200)


@bp.post("/webhooks/salesforce/events")
def events() -> tuple[Response, int]:
    """Signed JSON events: signature, then shape, then queue."""
    ext = current_app.extensions["onstrategy"]
    try:
        body = _body(BadEvents("body over 1 MiB"))
    except BadEvents as exc:
        return jsonify(error=str(exc)), 413
    try:
        signed_events.verify(
            ext.settings.salesforce_webhook_secret,
            request.headers.get("X-OnStrategy-Timestamp"),
            request.headers.get("X-OnStrategy-Signature"),
            body,
        )
        found = list(json_events(body, _own_fields(ext), _integration_user(ext)))
        new = _submit(ext, found)
    except signed_events.SignatureError as exc:
        return jsonify(error=str(exc)), 401
    except BadEvents as exc:
        return jsonify(error=str(exc)), 400
    except QueueUnavailable:
        return jsonify(error="queue unavailable; send again later"), 503
    return jsonify(queued=len(found), new=new), 200


def _body(too_large: Exception) -> bytes:
    """The raw body, refusing more than :data:`MAX_BODY` without reading it all."""
    if (request.content_length or 0) > MAX_BODY:
        raise too_large
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise too_large
    return body


def _submit(ext: Any, found: Sequence[ChangeEvent]) -> int:
    return ext.intake.submit(found) if found else 0


def _soap(text: str, status: int) -> Response:
    return Response(text, status=status, content_type=soap.CONTENT_TYPE)


def _own_fields(ext: Any) -> frozenset[str]:
    fields = ext.fields("salesforce")
    return frozenset(fields[name] for name in OUTPUT_FIELDS)


def _integration_user(ext: Any) -> str:
    """From the extension, else from settings (``ONSTRATEGY_SALESFORCE_INTEGRATION_USER_ID``)."""
    found = getattr(ext, "salesforce_integration_user_id", "")
    return found or getattr(ext.settings, "salesforce_integration_user_id", "") or ""


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
) -> Iterable[ChangeEvent]:
    """One event per supported notification; an outbound message lists values, not changes."""
    for item in message.notifications:
        kind = KIND_BY_SOBJECT.get(item.sobject_type)
        if kind is None:
            log.info("salesforce outbound: ignoring unsupported sObject %s", item.sobject_type)
            continue
        modified_by = item.fields.get("LastModifiedById", "")
        if starts_no_work((), own_fields, modified_by, integration_user):
            continue
        yield ChangeEvent(
            crm="salesforce",
            kind=kind,
            object_id=item.record_id,
            key=f"salesforce:{item.id}",
            occurred_at=item.fields.get("SystemModstamp", item.fields.get("LastModifiedDate", "")),
            source="salesforce:outbound",
            extra={"sobject": item.sobject_type, "action_id": message.action_id},
        )


def json_events(
    body: bytes, own_fields: frozenset[str], integration_user: str = ""
) -> Iterable[ChangeEvent]:
    """``{"events": [{"id", "recordId", "changedFields"}]}`` as change events.

    Optional per event: ``changeType`` (``DELETE`` forgets the record) and
    ``modifiedBy`` (the user who made the change, for the loop guard).
    """
    for raw in _event_list(body):
        event = _json_event(raw)
        if event is None:
            continue
        modified_by = _str(raw, "modifiedBy")
        if starts_no_work(event.changed_fields, own_fields, modified_by, integration_user):
            continue
        yield event


def _event_list(body: bytes) -> list[Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadEvents(f"body is not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise BadEvents('body must be {"events": [...]}')
    return document["events"]


def _json_event(raw: Any) -> ChangeEvent | None:
    """The event, or ``None`` for a record type the service does not track."""
    if not isinstance(raw, dict):
        raise BadEvents("each event must be an object")
    event_id, record_id = _str(raw, "id"), _str(raw, "recordId")
    if not event_id or len(record_id) not in (15, 18) or not record_id.isalnum():
        raise BadEvents("each event needs an id and a 15- or 18-character recordId")
    changed = raw.get("changedFields", [])
    if not isinstance(changed, list) or not all(isinstance(f, str) for f in changed):
        raise BadEvents("changedFields must be a list of field names")
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


def _str(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise BadEvents(f"{key} must be a string")
    return value.strip()
