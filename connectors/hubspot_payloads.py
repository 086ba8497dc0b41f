"""HubSpot request bodies and answers, built and read without I/O.

Pure helpers for :mod:`connectors.hubspot`: search filters, the same filters
applied to deals reached through their companies, task inputs and the matching
of batch answers (which HubSpot does not return in input order) to inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import Any

from connectors import hubspot_facts as hf
from connectors.base import OpportunityQuery, TaskSpec, WriteResult

TASK_TO_DEAL = 216  # HUBSPOT_DEFINED association type id
PRIORITIES = {"low": "LOW", "normal": "MEDIUM", "medium": "MEDIUM", "high": "HIGH"}


def filter_groups(query: OpportunityQuery, last_id: str) -> list[dict]:
    base = [{"propertyName": "hs_object_id", "operator": "GT", "value": last_id}]
    if query.modified_since:
        since = epoch_ms(query.modified_since)
        base.append({"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": since})
    if not query.open_only:
        return [{"filters": base}]
    is_open = {"propertyName": "hs_is_closed", "operator": "EQ", "value": "false"}
    groups = [{"filters": [*base, is_open]}]
    if query.closed_after:
        after = epoch_ms(query.closed_after)
        closed = [
            {"propertyName": "hs_is_closed", "operator": "EQ", "value": "true"},
            {"propertyName": "closedate", "operator": "GTE", "value": after},
        ]
        groups.append({"filters": [*base, *closed]})
    return groups


def matches(props: dict[str, Any], query: OpportunityQuery) -> bool:
    """The search filters, applied to deals reached through their companies."""
    if query.modified_since and epoch_ms(hf.text(props, "hs_lastmodifieddate") or "0") < (
        epoch_ms(query.modified_since)
    ):
        return False
    if not query.open_only or not hf.flag(props, "hs_is_closed"):
        return True
    closed = hf.utc_date(hf.text(props, "closedate"))
    return bool(query.closed_after and closed and closed >= query.closed_after.isoformat())


def epoch_ms(value: Any) -> str:
    """Milliseconds since the epoch, as search filters on date properties expect."""
    if isinstance(value, str) and value.isdigit():
        return value
    if isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    elif isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.combine(value, time(0), tzinfo=UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return str(int(moment.timestamp() * 1000))


def value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def task_input(task: TaskSpec) -> dict:
    # Noon UTC keeps the due date on the same calendar day in almost every time zone.
    due = datetime.combine(task.due_date, time(12), tzinfo=UTC)
    props = {
        "hs_task_subject": task.subject,
        "hs_task_body": task.body,
        "hs_timestamp": str(int(due.timestamp() * 1000)),
        "hs_task_status": "NOT_STARTED",
        "hs_task_priority": PRIORITIES.get(task.priority.lower(), "MEDIUM"),
        "hs_task_type": "TODO",
        "hubspot_owner_id": str(task.assignee_id),
    }
    association = {
        "to": {"id": str(task.opportunity_id)},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": TASK_TO_DEAL}],
    }
    return {"properties": props, "associations": [association], "objectWriteTraceId": task.key}


def created(chunk: Sequence[TaskSpec], data: dict) -> list[WriteResult]:
    """Match created tasks to specs by ``objectWriteTraceId``: batch order is not promised."""
    results = data.get("results") or []
    by_trace = {r.get("objectWriteTraceId"): str(r["id"]) for r in results}
    if None in by_trace and len(results) == len(chunk):
        by_trace = {t.key: str(r["id"]) for t, r in zip(chunk, results, strict=True)}
    errors = errors_by(data.get("errors") or [], "objectWriteTraceId")
    return [
        WriteResult(t.key, True, id=by_trace[t.key])
        if t.key in by_trace
        else WriteResult(t.key, False, error=errors.get(t.key, "task not created"))
        for t in chunk
    ]


def task_state(task: dict | None) -> str:
    if task is None:
        return "deleted"
    status = hf.text(task.get("properties") or {}, "hs_task_status")
    return "completed" if status == "COMPLETED" else "open"


def closed(task_id: str, found: dict, outcome: dict[str, WriteResult]) -> WriteResult:
    if task_id in outcome:
        return outcome[task_id]
    if task_id not in found:
        return WriteResult(task_id, False, error="task not found (deleted)")
    return WriteResult(task_id, True)  # already completed by someone


def append(body: str, comment: str) -> str:
    return f"{body}\n\n{comment}" if body else comment


def errors_by(errors: list[dict], *keys: str) -> dict[str, str]:
    """Per-input messages from a 207 body, keyed by the ids its ``context`` names."""
    found: dict[str, str] = {}
    for error in errors:
        message = error.get("message") or error.get("category") or "error"
        context = error.get("context") or {}
        for key in keys:
            found.update((str(v), message) for v in context.get(key) or [])
    return found
