"""The HubSpot connector: deals in, output properties and coaching tasks out, 100 per call.

Reads hydrate each batch of deals with one batch call per related kind (v4
associations to companies and line items, then companies and line items), while
owners, deal pipelines and the industry options are read once per connector and
cached. Writes use the batch endpoints and report one result per input, with
HubSpot's 207 per-input errors attached to the inputs they name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, time
from typing import Any

from connectors import hubspot_facts as hf
from connectors.base import (
    FieldMap,
    FieldUpdate,
    OpportunityQuery,
    TaskClose,
    TaskSpec,
    WriteResult,
    chunks,
)
from connectors.hubspot_api import HubSpotApi
from connectors.hubspot_setup import ensure_fields
from integration.model import OpportunityRecord, Owner
from integration.ratelimit import hubspot_buckets

BATCH = 100  # "Batch operations are limited to 100 records at a time"
TASK_TO_DEAL = 216  # HUBSPOT_DEFINED association type id
PRIORITIES = {"low": "LOW", "normal": "MEDIUM", "medium": "MEDIUM", "high": "HIGH"}
OBJECT_APIS = {
    "deals": "crm.deals.batch_api",
    "companies": "crm.companies.batch_api",
    "line_items": "crm.line_items.batch_api",
    "tasks": "crm.objects.tasks.batch_api",
}


class HubSpotConnector:
    """:class:`connectors.base.Connector` for HubSpot deals (see the module docstring)."""

    name = "hubspot"

    def __init__(self, api: HubSpotApi, fields: FieldMap) -> None:
        self.api = api
        self.fields = fields
        self._owners: dict[str, Owner] | None = None
        self._stages: dict[str, hf.Stage] | None = None
        self._industries: dict[str, str] | None = None

    @property
    def api_calls(self) -> Any:
        """Calls made so far, a ``Counter`` by kind (``deals.read``, ``tasks.create``...)."""
        return self.api.api_calls

    # -- reads -------------------------------------------------------------

    def read_opportunities(self, ids: Sequence[str]) -> list[OpportunityRecord]:
        records: list[OpportunityRecord] = []
        for chunk in chunks(list(dict.fromkeys(map(str, ids))), BATCH):
            deals = self._batch_read("deals", chunk, hf.deal_properties(self.fields))
            records.extend(self._hydrate(deals))
        return records

    def iter_opportunities(self, query: OpportunityQuery) -> Iterator[list[OpportunityRecord]]:
        if query.account_ids is not None:
            yield from self._iter_by_accounts(query)
            return
        last_id = "0"
        while True:
            body = {
                "filterGroups": _filter_groups(query, last_id),
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": hf.deal_properties(self.fields),
                "limit": BATCH,
            }
            data = self.api.call(
                "deals.search",
                "crm.deals.search_api",
                "do_search",
                public_object_search_request=body,
            )
            deals = data.get("results") or []
            if deals:
                yield self._hydrate(deals)
                last_id = str(deals[-1]["id"])
            # Paging by hs_object_id > last id, never by `after`, stays clear of the
            # search API's 10,000-result cap per query.
            if not deals or not (data.get("paging") or {}).get("next"):
                return

    def _iter_by_accounts(self, query: OpportunityQuery) -> Iterator[list[OpportunityRecord]]:
        """Deals of these companies, via batch associations (no search cap, no search limit)."""
        by_company = self._associations("companies", "deals", list(query.account_ids or ()))
        deal_ids = sorted(
            {str(t["toObjectId"]) for targets in by_company.values() for t in targets},
            key=lambda i: (len(i), i),
        )
        for chunk in chunks(deal_ids, BATCH):
            deals = self._batch_read("deals", chunk, hf.deal_properties(self.fields))
            deals = [d for d in deals if _matches(d.get("properties") or {}, query)]
            if deals:
                yield self._hydrate(deals)

    def _hydrate(self, deals: list[dict[str, Any]]) -> list[OpportunityRecord]:
        deal_ids = [str(d["id"]) for d in deals]
        lookups = hf.Lookups(
            stages=self._stage_map(), owners=self._owner_map(), industries=self._industry_map()
        )
        companies = self._associations("deals", "companies", deal_ids)
        lookups.deal_company = {
            deal_id: hf.primary_company(targets) for deal_id, targets in companies.items()
        }
        items = self._associations("deals", "line_items", deal_ids)
        lookups.deal_line_items = {
            deal_id: [str(t["toObjectId"]) for t in targets] for deal_id, targets in items.items()
        }
        company_ids = sorted({c for c in lookups.deal_company.values() if c})
        lookups.companies = self._read_by_id(
            "companies", company_ids, hf.company_properties(self.fields)
        )
        item_ids = sorted({i for ids in lookups.deal_line_items.values() for i in ids})
        lookups.line_items = self._read_by_id("line_items", item_ids, ["name"])
        return [hf.record(deal, lookups, self.fields) for deal in deals]

    def _read_by_id(self, object_type: str, ids: list[str], props: list[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for chunk in chunks(ids, BATCH):
            found.update((str(o["id"]), o) for o in self._batch_read(object_type, chunk, props))
        return found

    def _batch_read(self, object_type: str, ids: Sequence[str], props: list[str]) -> list[dict]:
        """One batch read; ids HubSpot cannot find (207 errors) are simply absent."""
        body = {
            "inputs": [{"id": i} for i in ids],
            "properties": props,
            "propertiesWithHistory": [],
        }
        data = self.api.call(
            f"{object_type}.read",
            OBJECT_APIS[object_type],
            "read",
            batch_read_input_simple_public_object_id=body,
        )
        return [r for r in data.get("results") or [] if not r.get("archived")]

    def _associations(self, from_type: str, to_type: str, ids: list[str]) -> dict[str, list]:
        """v4 batch association reads, 100 ids per call; ids with none are absent."""
        found: dict[str, list] = {}
        for chunk in chunks(ids, BATCH):
            data = self.api.call(
                f"associations.{from_type}.{to_type}",
                "crm.associations.v4.batch_api",
                "get_page",
                from_type,
                to_type,
                batch_input_public_fetch_associations_batch_request={
                    "inputs": [{"id": i} for i in chunk]
                },
            )
            for result in data.get("results") or []:
                found[str(result["from"]["id"])] = result.get("to") or []
        return found

    def _owner_map(self) -> dict[str, Owner]:
        if self._owners is None:
            owners: dict[str, Owner] = {}
            after: str | None = None
            while True:
                kwargs = {"limit": 100, "archived": False, **({"after": after} if after else {})}
                data = self.api.call("owners", "crm.owners.owners_api", "get_page", **kwargs)
                owners.update((str(o["id"]), hf.owner(o)) for o in data.get("results") or [])
                after = ((data.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break
            self._owners = owners
        return self._owners

    def _stage_map(self) -> dict[str, hf.Stage]:
        if self._stages is None:
            data = self.api.call("pipelines", "crm.pipelines.pipelines_api", "get_all", "deals")
            self._stages = {
                str(s["id"]): hf.stage(s)
                for pipeline in data.get("results") or []
                for s in pipeline.get("stages") or []
            }
        return self._stages

    def _industry_map(self) -> dict[str, str]:
        if self._industries is None:
            data = self.api.call(
                "properties.read", "crm.properties.core_api", "get_by_name", "companies", "industry"
            )
            self._industries = {
                o["value"]: o.get("label") or o["value"] for o in data.get("options") or []
            }
        return self._industries

    # -- writes ------------------------------------------------------------

    def update_opportunities(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        merged: dict[str, dict[str, str]] = {}
        bad: dict[int, str] = {}
        for index, update in enumerate(updates):
            try:
                props = {self.fields[k]: _value(v) for k, v in update.changes.items()}
            except KeyError as exc:
                bad[index] = f"unknown field {exc.args[0]!r}"
                continue
            merged.setdefault(str(update.opportunity_id), {}).update(props)
        outcome: dict[str, WriteResult] = {}
        for chunk in chunks(list(merged.items()), BATCH):
            inputs = [{"id": deal_id, "properties": props} for deal_id, props in chunk]
            outcome.update(self._batch_update("deals", inputs))
        return [
            WriteResult(str(u.opportunity_id), False, error=bad[i])
            if i in bad
            else outcome[str(u.opportunity_id)]
            for i, u in enumerate(updates)
        ]

    def _batch_update(self, object_type: str, inputs: list[dict]) -> dict[str, WriteResult]:
        data = self.api.call(
            f"{object_type}.update",
            OBJECT_APIS[object_type],
            "update",
            batch_input_simple_public_object_batch_input={"inputs": inputs},
        )
        done = {str(r["id"]) for r in data.get("results") or []}
        errors = _errors_by(data.get("errors") or [], "ids", "id")
        return {
            i["id"]: WriteResult(i["id"], True)
            if i["id"] in done
            else WriteResult(i["id"], False, error=errors.get(i["id"], "not updated"))
            for i in inputs
        }

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[WriteResult]:
        results: list[WriteResult] = []
        for chunk in chunks(list(tasks), BATCH):
            data = self.api.call(
                "tasks.create",
                OBJECT_APIS["tasks"],
                "create",
                batch_input_simple_public_object_batch_input_for_create={
                    "inputs": [_task_input(t) for t in chunk]
                },
            )
            results.extend(_created(chunk, data))
        return results

    def task_states(self, task_ids: Sequence[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(map(str, task_ids)))
        found = self._read_by_id("tasks", ids, ["hs_task_status"])
        return {i: _task_state(found.get(i)) for i in ids}

    def close_tasks(self, closes: Sequence[TaskClose]) -> list[WriteResult]:
        ids = list(dict.fromkeys(str(c.task_id) for c in closes))
        found = self._read_by_id("tasks", ids, ["hs_task_status", "hs_task_body"])
        inputs: dict[str, dict] = {}
        for close in closes:
            task = found.get(str(close.task_id))
            if task is None or _task_state(task) == "completed":
                continue
            body = hf.text(task.get("properties") or {}, "hs_task_body")
            props = {"hs_task_status": "COMPLETED", "hs_task_body": _append(body, close.comment)}
            inputs[str(close.task_id)] = {"id": str(close.task_id), "properties": props}
        outcome: dict[str, WriteResult] = {}
        for chunk in chunks(list(inputs.values()), BATCH):
            outcome.update(self._batch_update("tasks", list(chunk)))
        return [_closed(str(c.task_id), found, outcome) for c in closes]

    def ensure_fields(self, tags: Sequence[str]) -> list[str]:
        return ensure_fields(self.api, self.fields, tags)


def from_settings(settings: Any, fields: FieldMap, redis: Any = None) -> HubSpotConnector:
    """The connector for ``settings``; ``redis`` shares the rate-limit budget across workers."""
    api = HubSpotApi.create(
        settings.hubspot_access_token, settings.hubspot_api_url, buckets=hubspot_buckets(redis)
    )
    return HubSpotConnector(api, fields)


def _filter_groups(query: OpportunityQuery, last_id: str) -> list[dict]:
    base = [{"propertyName": "hs_object_id", "operator": "GT", "value": last_id}]
    if query.modified_since:
        since = _epoch_ms(query.modified_since)
        base.append({"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": since})
    if not query.open_only:
        return [{"filters": base}]
    is_open = {"propertyName": "hs_is_closed", "operator": "EQ", "value": "false"}
    groups = [{"filters": [*base, is_open]}]
    if query.closed_after:
        after = _epoch_ms(query.closed_after)
        closed = [
            {"propertyName": "hs_is_closed", "operator": "EQ", "value": "true"},
            {"propertyName": "closedate", "operator": "GTE", "value": after},
        ]
        groups.append({"filters": [*base, *closed]})
    return groups


def _matches(props: dict[str, Any], query: OpportunityQuery) -> bool:
    """The search filters, applied to deals reached through their companies."""
    if query.modified_since and _epoch_ms(hf.text(props, "hs_lastmodifieddate") or "0") < (
        _epoch_ms(query.modified_since)
    ):
        return False
    if not query.open_only or not hf.flag(props, "hs_is_closed"):
        return True
    closed = hf.utc_date(hf.text(props, "closedate"))
    return bool(query.closed_after and closed and closed >= query.closed_after.isoformat())


def _epoch_ms(value: Any) -> str:
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


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _task_input(task: TaskSpec) -> dict:
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


def _created(chunk: Sequence[TaskSpec], data: dict) -> list[WriteResult]:
    """Match created tasks to specs by ``objectWriteTraceId``: batch order is not promised."""
    results = data.get("results") or []
    by_trace = {r.get("objectWriteTraceId"): str(r["id"]) for r in results}
    if None in by_trace and len(results) == len(chunk):
        by_trace = {t.key: str(r["id"]) for t, r in zip(chunk, results, strict=True)}
    errors = _errors_by(data.get("errors") or [], "objectWriteTraceId")
    return [
        WriteResult(t.key, True, id=by_trace[t.key])
        if t.key in by_trace
        else WriteResult(t.key, False, error=errors.get(t.key, "task not created"))
        for t in chunk
    ]


def _task_state(task: dict | None) -> str:
    if task is None:
        return "deleted"
    status = hf.text(task.get("properties") or {}, "hs_task_status")
    return "completed" if status == "COMPLETED" else "open"


def _closed(task_id: str, found: dict, outcome: dict[str, WriteResult]) -> WriteResult:
    if task_id in outcome:
        return outcome[task_id]
    if task_id not in found:
        return WriteResult(task_id, False, error="task not found (deleted)")
    return WriteResult(task_id, True)  # already completed by someone


def _append(body: str, comment: str) -> str:
    return f"{body}\n\n{comment}" if body else comment


def _errors_by(errors: list[dict], *keys: str) -> dict[str, str]:
    """Per-input messages from a 207 body, keyed by the ids its ``context`` names."""
    found: dict[str, str] = {}
    for error in errors:
        message = error.get("message") or error.get("category") or "error"
        context = error.get("context") or {}
        for key in keys:
            found.update((str(v), message) for v in context.get(key) or [])
    return found
