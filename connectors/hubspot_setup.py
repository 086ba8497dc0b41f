"""``onstrategy setup --crm hubspot``: create the deal properties the service writes.

Idempotent: reads each property first and creates only what is missing; on an
existing enumeration fit property it adds the tags the ruleset gained. It never
changes the type of a property an admin already made, and it creates
``strategy_exception_reason`` (which reps fill in) only when absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.base import NotFound
from integration.domain.fields import FieldMap

GROUP = {"name": "onstrategy", "label": "OnStrategy", "displayOrder": -1}
OBJECT = "deals"


def definitions(fields: FieldMap, tags: Sequence[str]) -> list[dict[str, Any]]:
    """The property definitions to create, in the documented ``POST /crm/v3/properties`` shape."""
    group = GROUP["name"]
    return [
        {
            "name": fields["fit"],
            "label": "Strategy fit",
            "type": "enumeration",
            "fieldType": "select",
            "groupName": group,
            "options": options(tags),
            "description": "Set by OnStrategy from the rule files.",
        },
        {
            "name": fields["reason"],
            "label": "Strategy fit reason",
            "type": "string",
            "fieldType": "text",
            "groupName": group,
            "description": "Why the deal got its strategy fit, one line.",
        },
        {
            "name": fields["warning"],
            "label": "Strategy warning",
            "type": "string",
            "fieldType": "textarea",
            "groupName": group,
            "description": "Warnings from the strategy rules; empty when none.",
        },
        {
            "name": fields["comp_eligible"],
            "label": "Comp eligible",
            "type": "bool",
            "fieldType": "booleancheckbox",
            "groupName": group,
            "options": [
                {"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
                {"label": "No", "value": "false", "displayOrder": 1, "hidden": False},
            ],
            "description": "Whether the deal counts for compensation (target account list).",
        },
        {
            "name": fields["exception_reason"],
            "label": "Strategy exception reason",
            "type": "string",
            "fieldType": "text",
            "groupName": group,
            "description": "The rep's reason for pursuing an off-strategy deal.",
        },
    ]


def options(tags: Sequence[str], start: int = 0) -> list[dict[str, Any]]:
    return [
        {"label": tag, "value": tag, "displayOrder": start + i, "hidden": False}
        for i, tag in enumerate(dict.fromkeys(tags))
    ]


def ensure_fields(api: Any, fields: FieldMap, tags: Sequence[str]) -> list[str]:
    """Create the group and missing properties, add missing fit options; return what changed."""
    changed: list[str] = []
    if _read(api, "groups", "crm.properties.groups_api", OBJECT, GROUP["name"]) is None:
        api.call("groups.create", "crm.properties.groups_api", "create", OBJECT, GROUP)
        changed.append(f"property group {GROUP['name']}")
    for definition in definitions(fields, tags):
        name = definition["name"]
        existing = _read(api, "properties", "crm.properties.core_api", OBJECT, name)
        if existing is None:
            api.call("properties.create", "crm.properties.core_api", "create", OBJECT, definition)
            changed.append(name)
        elif name == fields["fit"]:
            changed.extend(_add_options(api, existing, tags))
    return changed


def _add_options(api: Any, existing: dict[str, Any], tags: Sequence[str]) -> list[str]:
    """Append the tags an enumeration property lacks; leave text properties alone."""
    if existing.get("type") != "enumeration":
        return []
    current = existing.get("options") or []
    have = {o.get("value") for o in current}
    missing = [t for t in dict.fromkeys(tags) if t not in have]
    if not missing:
        return []
    name = existing["name"]
    update = {"options": [*current, *options(missing, start=len(current))]}
    api.call("properties.update", "crm.properties.core_api", "update", OBJECT, name, update)
    return [f"{name} options: {', '.join(missing)}"]


def _read(api: Any, kind: str, path: str, object_type: str, name: str) -> dict | None:
    try:
        return api.call(f"{kind}.read", path, "get_by_name", object_type, name)
    except NotFound:
        return None
