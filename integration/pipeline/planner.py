"""``plan``: which fields and tasks must change for a decision to hold in the CRM.

Pure functions. The service writes a field only when its value changes, so its
own writes never start an endless loop, and a second run writes nothing. "Empty
is empty": Salesforce stores ``""`` as null and HubSpot may return ``""`` or no
value, so empty string, null and absent compare equal.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from connectors.base import TaskSpec, task_marker
from integration.domain.model import OUTPUT_FIELDS, CoachingTask, Decision, Facts
from integration.store.models import TaskRow


def normalized(value: Any) -> Any:
    """Comparable form of a CRM value: empty -> None, "true"/"false" -> bool, numbers as text."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, str):
        return value.strip() or None
    return value


def plan_fields(decision: Decision, current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{field: (old, new)}`` for every output field whose value must change."""
    if decision.frozen:
        return {}
    desired = decision.desired()
    changes = {}
    for name in OUTPUT_FIELDS:
        old, new = current.get(name), desired[name]
        if normalized(old) != normalized(new):
            changes[name] = (old, new)
    return changes


def reported_values(decision: Decision, current: dict[str, Any]) -> dict[str, Any]:
    """What reports count: a frozen deal counts with the values it has in the CRM."""
    desired = decision.desired()
    if not decision.frozen:
        return desired
    return {
        name: desired[name] if normalized(current.get(name)) is None else current.get(name)
        for name in OUTPUT_FIELDS
    }


def held_values(current: dict[str, Any], applied: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    """The output fields as the CRM holds them once ``applied`` changes are written."""
    held = {name: normalized(current.get(name)) for name in OUTPUT_FIELDS}
    held.update({name: new for name, (_, new) in applied.items()})
    return held


def importance(facts: Facts) -> tuple[float, str]:
    """Most important first: amount x probability, then the nearest close date."""
    o = facts.opportunity
    return o.amount * o.probability / 100.0, o.close_date or "9999-12-31"


def assignee(task: CoachingTask, facts: Facts) -> str:
    """The owner's manager; the owner when there is none or the rule says so."""
    if task.assign_to == "manager" and facts.owner.manager_id:
        return facts.owner.manager_id
    return facts.owner.id


def task_spec(row: TaskRow, today: date) -> TaskSpec:
    """The CRM task for a claimed coaching row; its key is the row id, its marker in the body."""
    key = str(row.id)
    return TaskSpec(
        key=key,
        opportunity_id=row.opportunity_id,
        assignee_id=row.assignee_id,
        subject=row.subject,
        body=f"{row.body}\n\n{task_marker(key)}" if row.body else task_marker(key),
        due_date=today + timedelta(days=row.due_in_days),
        priority=row.priority,
    )


def close_reason(decision: Decision, facts: Facts) -> str:
    """Why a coaching task is no longer needed, in words a manager understands."""
    if facts.opportunity.is_closed:
        outcome = "won" if facts.opportunity.is_won else "lost"
        return f"Closed by OnStrategy: the deal was closed {outcome}."
    if decision.counts_as == "on":
        return f"Closed by OnStrategy: the deal is now {decision.fit}."
    if decision.counts_as == "approved":
        return f"Closed by OnStrategy: the exception was approved ({decision.reason})."
    return "Closed by OnStrategy: the coaching rule no longer applies to this deal."
