"""The routes of the HubSpot fake: one small function per documented endpoint.

Each takes the fake's state, the path match, the query and the decoded JSON
body, and returns ``(status, headers, body)``. Shapes follow HubSpot's CRM v3/v4
docs: objects are ``{id, properties, createdAt, updatedAt, archived}`` with
string values; batch replies carry ``status``/``results`` and, on 207, ``errors``
whose ``context`` names the inputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

MAX_BATCH = 100
MAX_ASSOCIATION_BATCH = 1000  # batch association reads: "may not exceed 1000 IDs" (2025 changelog)
SEARCH_CAP = 10_000
DEFAULT_RETURNED = ("hs_object_id", "createdate", "hs_lastmodifieddate")
SINGULAR = {"deals": "DEAL", "companies": "COMPANY", "line_items": "LINE_ITEM", "tasks": "TASK"}
OBJECT_ALIASES = {
    "deal": "deals",
    "company": "companies",
    "line_item": "line_items",
    "task": "tasks",
    "0-3": "deals",
    "0-2": "companies",
    "0-8": "line_items",
    "0-27": "tasks",
}


def as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def error(status: int, message: str, category: str = "VALIDATION_ERROR", **extra: Any) -> dict:
    return {
        "status": "error",
        "message": message,
        "correlationId": "fake-correlation",
        "category": category,
        **extra,
    }


def _object_type(name: str) -> str:
    return OBJECT_ALIASES.get(name, name)


def _view(record: dict, wanted: list[str] | None) -> dict:
    """The record as HubSpot returns it: only requested properties (plus the defaults)."""
    names = set(wanted or []) | set(DEFAULT_RETURNED)
    props = {k: v for k, v in record["properties"].items() if k in names}
    return {k: v for k, v in record.items() if k != "properties"} | {"properties": props}


def _batch_reply(results: list, errors: list, ok_status: int = 200) -> tuple:
    stamp = now_iso()
    body = {
        "status": "COMPLETE",
        "results": results,
        "requestedAt": stamp,
        "startedAt": stamp,
        "completedAt": stamp,
    }
    if errors:
        body |= {"errors": errors, "numErrors": len(errors)}
        return 207, {}, body
    return ok_status, {}, body


def _too_many(inputs: list, limit: int = MAX_BATCH) -> tuple | None:
    if len(inputs) > limit:
        return (
            400,
            {},
            error(400, f"Batch input must contain at most {limit} inputs; got {len(inputs)}."),
        )
    return None


def batch_read(state: Any, m: re.Match, query: dict, body: dict) -> tuple:
    object_type = _object_type(m["type"])
    inputs = body.get("inputs") or []
    if (refused := _too_many(inputs)) is not None:
        return refused
    store = state.objects[object_type]
    found, missing = [], []
    for item in inputs:
        record = store.get(str(item["id"]))
        if record is None or record["archived"]:
            missing.append(str(item["id"]))
        else:
            found.append(_view(record, body.get("properties")))
    errors = (
        [
            error(
                404,
                f"Could not get some {SINGULAR[object_type]} objects, they may be "
                "deleted or not exist. Check that ids are valid.",
                "OBJECT_NOT_FOUND",
                context={"ids": missing},
            )
        ]
        if missing
        else []
    )
    return _batch_reply(found, errors)


def batch_update(state: Any, m: re.Match, query: dict, body: dict) -> tuple:
    object_type = _object_type(m["type"])
    inputs = body.get("inputs") or []
    if (refused := _too_many(inputs)) is not None:
        return refused
    for item in inputs:
        if problem := _invalid_values(state, object_type, item.get("properties") or {}):
            return 400, {}, error(400, problem)
    results, errors = [], []
    for item in inputs:
        record = state.objects[object_type].get(str(item["id"]))
        reason = state.fail_updates.get(str(item["id"]))
        if record is None or record["archived"] or reason:
            message = reason or f"Object {item['id']} not found"
            errors.append(
                error(
                    400 if reason else 404,
                    message,
                    "VALIDATION_ERROR" if reason else "OBJECT_NOT_FOUND",
                    context={"ids": [str(item["id"])]},
                )
            )
            continue
        stamp = now_iso()
        record["properties"].update({k: as_string(v) for k, v in item["properties"].items()})
        record["properties"]["hs_lastmodifieddate"] = stamp
        record["updatedAt"] = stamp
        results.append(_view(record, list(item["properties"])))
    return _batch_reply(results, errors)


def _invalid_values(state: Any, object_type: str, props: dict) -> str:
    """HubSpot refuses an enumeration value that is not one of the property's options."""
    defined = state.properties.get(object_type, {})
    for name, value in props.items():
        spec = defined.get(name)
        if not spec or spec.get("type") != "enumeration" or value in ("", None):
            continue
        if value not in {o["value"] for o in spec.get("options") or []}:
            return f'Property values were not valid: "{value}" is not a valid option for {name}'
    return ""


def batch_create_tasks(state: Any, m: re.Match, query: dict, body: dict) -> tuple:
    inputs = body.get("inputs") or []
    if (refused := _too_many(inputs)) is not None:
        return refused
    results = []
    for item in inputs:
        props = item.get("properties") or {}
        if "hs_timestamp" not in props:
            return 400, {}, error(400, "Property hs_timestamp is required.")
        for association in item.get("associations") or []:
            types = association.get("types") or []
            if not any(
                t.get("associationTypeId") == 216
                and t.get("associationCategory") == "HUBSPOT_DEFINED"
                for t in types
            ):
                return 400, {}, error(400, "Invalid association type for task to deal.")
            if str(association["to"]["id"]) not in state.objects["deals"]:
                return 400, {}, error(400, f"Deal {association['to']['id']} does not exist.")
        task_id = state.new_id()
        stamp = now_iso()
        record = {
            "id": task_id,
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
            "properties": {
                **{k: as_string(v) for k, v in props.items()},
                "hs_object_id": task_id,
                "createdate": stamp,
                "hs_lastmodifieddate": stamp,
            },
        }
        state.objects["tasks"][task_id] = record
        for association in item.get("associations") or []:
            state.associate("tasks", task_id, "deals", str(association["to"]["id"]))
        view = _view(record, list(props))
        if item.get("objectWriteTraceId"):
            view["objectWriteTraceId"] = item["objectWriteTraceId"]
        results.append(view)
    results.reverse()  # batch create does not promise input order
    return _batch_reply(results, [], ok_status=201)


def associations_read(state: Any, m: re.Match, query: dict, body: dict) -> tuple:
    from_type, to_type = _object_type(m["from"]), _object_type(m["to"])
    inputs = body.get("inputs") or []
    if (refused := _too_many(inputs, MAX_ASSOCIATION_BATCH)) is not None:
        return refused
    results, errors = [], []
    for item in inputs:
        targets = state.associations.get((from_type, to_type, str(item["id"])), {})
        live = {
            k: v
            for k, v in targets.items()
            if k in state.objects[to_type] and not state.objects[to_type][k]["archived"]
        }
        if not live:
            errors.append(
                error(
                    404,
                    f"No {SINGULAR[to_type].lower()} is associated with "
                    f"{SINGULAR[from_type].lower()} {item['id']}.",
                    "OBJECT_NOT_FOUND",
                    subCategory="crm.associations.NO_ASSOCIATIONS_FOUND",
                    context={"fromObjectId": [str(item["id"])]},
                )
            )
            continue
        results.append(
            {
                "from": {"id": str(item["id"])},
                "to": [{"toObjectId": int(k), "associationTypes": v} for k, v in live.items()],
            }
        )
    return _batch_reply(results, errors)


def search(state: Any, m: re.Match, query: dict, body: dict) -> tuple:
    object_type = _object_type(m["type"])
    groups = body.get("filterGroups") or []
    if len(groups) > 5 or sum(len(g.get("filters") or []) for g in groups) > 18:
        return 400, {}, error(400, "Too many filter groups or filters.")
    limit, after = int(body.get("limit") or 10), int(body.get("after") or 0)
    if limit > 200 or after + limit > SEARCH_CAP:
        return 400, {}, error(400, "Search results are limited to 10,000 per query.")
    records = [
        r
        for r in state.objects[object_type].values()
        if not r["archived"]
        and (not groups or any(_group(state, object_type, r, g) for g in groups))
    ]
    for sort in body.get("sorts") or [{"propertyName": "hs_object_id"}]:
        key = sort.get("propertyName", "hs_object_id")
        records.sort(
            key=lambda r, k=key: _sortable(r["properties"].get(k)),
            reverse=sort.get("direction") == "DESCENDING",
        )
    page = records[after : after + limit]
    reply = {"total": len(records), "results": [_view(r, body.get("properties")) for r in page]}
    if after + limit < len(records):
        reply["paging"] = {"next": {"after": str(after + limit)}}
    return 200, {}, reply


def _group(state: Any, object_type: str, record: dict, group: dict) -> bool:
    return all(_filter(state, object_type, record, f) for f in group.get("filters") or [])


def _filter(state: Any, object_type: str, record: dict, f: dict) -> bool:
    name, op = f["propertyName"], f["operator"]
    if name.startswith("associations."):
        other = _object_type(name.split(".")[1])
        linked = state.associations.get((object_type, other, record["id"]), {})
        values = set(f.get("values") or [f.get("value")])
        return bool(values & set(linked)) if op in ("EQ", "IN") else not values & set(linked)
    actual = record["properties"].get(name)
    if op == "HAS_PROPERTY":
        return actual not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return actual in (None, "")
    if op in ("IN", "NOT_IN"):
        return (actual in (f.get("values") or [])) == (op == "IN")
    if actual is None:
        return op == "NEQ"
    a, b = _sortable(actual), _sortable(f.get("value"))
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "EQ": lambda x, y: x == y,
        "NEQ": lambda x, y: x != y,
        "GT": lambda x, y: x > y,
        "GTE": lambda x, y: x >= y,
        "LT": lambda x, y: x < y,
        "LTE": lambda x, y: x <= y,
    }
    return compare[op](a, b)


def _sortable(value: Any) -> tuple:
    """Numbers, epoch ms and ISO datetimes compare as numbers; other strings as text."""
    text = "" if value is None else str(value)
    try:
        return (0, float(text), "")
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (0, moment.timestamp() * 1000, "")
    except ValueError:
        return (1, 0.0, text)


def owners(state: Any, m: re.Match, query: dict, body: Any) -> tuple:
    limit = int((query.get("limit") or ["100"])[0])
    after = int((query.get("after") or ["0"])[0])
    page = state.owners[after : after + limit]
    reply: dict[str, Any] = {"results": page}
    if after + limit < len(state.owners):
        reply["paging"] = {"next": {"after": str(after + limit)}}
    return 200, {}, reply


def pipelines(state: Any, m: re.Match, query: dict, body: Any) -> tuple:
    return 200, {}, {"results": state.pipelines if m["type"] == "deals" else []}


def property_get(state: Any, m: re.Match, query: dict, body: Any) -> tuple:
    spec = state.properties.get(_object_type(m["type"]), {}).get(m["name"])
    if spec is None:
        return 404, {}, error(404, f"Unable to find property {m['name']}", "OBJECT_NOT_FOUND")
    return 200, {}, spec


def property_create(state: Any, m: re.Match, query: dict, body: dict) -> tuple:
    object_type = _object_type(m["type"])
    missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
    if missing:
        return 400, {}, error(400, f"Missing required fields: {', '.join(missing)}")
    if body["groupName"] not in state.groups.get(object_type, {}):
        return 400, {}, error(400, f"Property group {body['groupName']} does not exist.")
    if body["name"] in state.properties.get(object_type, {}):
        return (
            409,
            {},
            error(409, f"Property {body['name']} already exists.", "OBJECT_ALREADY_EXISTS"),
        )
    spec = {**body, "options": body.get("options") or [], "createdAt": now_iso()}
    state.properties.setdefault(object_type, {})[body["name"]] = spec
    return 201, {}, spec


def property_update(state: Any, m: re.Match, query: dict, body: dict) -> tuple:
    spec = state.properties.get(_object_type(m["type"]), {}).get(m["name"])
    if spec is None:
        return 404, {}, error(404, f"Unable to find property {m['name']}", "OBJECT_NOT_FOUND")
    spec.update(body)
    return 200, {}, spec


def group_get(state: Any, m: re.Match, query: dict, body: Any) -> tuple:
    group = state.groups.get(_object_type(m["type"]), {}).get(m["name"])
    if group is None:
        return 404, {}, error(404, f"Unable to find group {m['name']}", "OBJECT_NOT_FOUND")
    return 200, {}, group


def group_create(state: Any, m: re.Match, query: dict, body: dict) -> tuple:
    groups = state.groups.setdefault(_object_type(m["type"]), {})
    if body["name"] in groups:
        return 409, {}, error(409, f"Group {body['name']} already exists.", "OBJECT_ALREADY_EXISTS")
    groups[body["name"]] = dict(body)
    return 201, {}, groups[body["name"]]


ROUTES: list[tuple[str, str, Callable[..., tuple]]] = [
    ("POST", r"/crm/v3/objects/(?P<type>\w+)/batch/read", batch_read),
    ("POST", r"/crm/v3/objects/(?P<type>\w+)/batch/update", batch_update),
    ("POST", r"/crm/v3/objects/tasks/batch/create", batch_create_tasks),
    ("POST", r"/crm/v3/objects/(?P<type>\w+)/search", search),
    ("POST", r"/crm/v4/associations/(?P<from>[\w-]+)/(?P<to>[\w-]+)/batch/read", associations_read),
    ("GET", r"/crm/v3/owners/?", owners),
    ("GET", r"/crm/v3/pipelines/(?P<type>\w+)", pipelines),
    ("GET", r"/crm/v3/properties/(?P<type>\w+)/groups/(?P<name>\w+)", group_get),
    ("POST", r"/crm/v3/properties/(?P<type>\w+)/groups", group_create),
    ("GET", r"/crm/v3/properties/(?P<type>\w+)/(?P<name>\w+)", property_get),
    ("PATCH", r"/crm/v3/properties/(?P<type>\w+)/(?P<name>\w+)", property_update),
    ("POST", r"/crm/v3/properties/(?P<type>\w+)", property_create),
]


def dispatch(state: Any, method: str, path: str, query: dict, body: Any) -> tuple:
    for route_method, pattern, handler in ROUTES:
        m = re.fullmatch(pattern, path)
        if route_method == method and m is not None:
            return handler(state, m, query, body)
    return 404, {}, error(404, f"No route for {method} {path}", "NOT_FOUND")
