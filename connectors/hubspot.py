"""The HubSpot connector: deals in, output properties and coaching tasks out, 100 per call.

Reads hydrate a job's deals together (up to :data:`HYDRATE` at a time): the deals
100 per call, their v4 associations to companies and line items 1,000 ids per call,
then the companies and line items they name 100 per call, so a job of 500 deals
costs 21 calls where five jobs of 100 cost 35. Owners, deal pipelines and the
industry options are read once per connector and cached. Writes use the batch
endpoints and report one result per input, with HubSpot's 207 per-input errors
attached to the inputs they name.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from connectors import hubspot_facts as hf
from connectors import hubspot_payloads as hp
from connectors.base import (
    FieldUpdate,
    OpportunityQuery,
    RejectedError,
    TaskClose,
    TaskSpec,
    WriteResult,
    chunks,
    task_marker,
)
from connectors.config import HubSpotConfig
from connectors.hubspot_api import HubSpotApi
from connectors.hubspot_setup import ensure_fields
from connectors.ratelimit import hubspot_buckets
from integration.domain.fields import FieldMap
from integration.domain.model import OpportunityRecord, Owner

CACHE_SECONDS = 900  # owners, pipelines and industry options are re-read this often
BATCH = 100  # "Batch operations are limited to 100 records at a time"
# Batch association reads take up to 1,000 ids (HubSpot developer changelog, "Bug
# Fix: Batch Read Limit for HubSpot Associations API", effective 2025-02-10).
ASSOCIATION_BATCH = 1000
HYDRATE = 2000  # deals hydrated together at most: the largest page a sweep reads
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
        self._cached_at = time.monotonic()
        self._looked_for: set[str] = set()  # ids that already caused one refresh

    @property
    def api_calls(self) -> Any:
        """Calls made so far, a ``Counter`` by kind (``deals.read``, ``tasks.create``...)."""
        return self.api.api_calls

    # -- reads -------------------------------------------------------------

    def read_opportunities(self, ids: Sequence[str]) -> list[OpportunityRecord]:
        """These deals, hydrated together: related records are read once for all of them."""
        records: list[OpportunityRecord] = []
        props = hf.deal_properties(self.fields)
        for group in chunks(list(dict.fromkeys(map(str, ids))), HYDRATE):
            deals = [
                d for chunk in chunks(group, BATCH) for d in self._batch_read("deals", chunk, props)
            ]
            records.extend(self._hydrate(deals))
        return records

    def iter_opportunities(self, query: OpportunityQuery) -> Iterator[list[OpportunityRecord]]:
        """Pages of up to ``query.page_size`` deals, hydrated together.

        HubSpot reads 100 objects per call; gathering several calls' deals into
        one page lets their companies be read once for the page and lets the
        caller write them back in full batches of 100.
        """
        source = (
            self._iter_by_accounts(query)
            if query.account_ids is not None
            else self._iter_search(query)
        )
        page: list[dict[str, Any]] = []
        primaries: dict[str, str] = {}
        for deals, known in source:
            page += deals
            primaries.update(known)
            if len(page) >= query.page_size:
                yield self._hydrate(page, primaries)
                page, primaries = [], {}
        if page:
            yield self._hydrate(page, primaries)

    def _iter_search(self, query: OpportunityQuery) -> Iterator[tuple[list[dict], dict[str, str]]]:
        """Raw deals from the search API, 100 per call, in id order."""
        last_id = "0"
        while True:
            body = {
                "filterGroups": hp.filter_groups(query, last_id),
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
                yield deals, {}
                last_id = str(deals[-1]["id"])
            # Paging by hs_object_id > last id, never by `after`, stays clear of the
            # search API's 10,000-result cap per query.
            if not deals or not (data.get("paging") or {}).get("next"):
                return

    def _iter_by_accounts(
        self, query: OpportunityQuery
    ) -> Iterator[tuple[list[dict], dict[str, str]]]:
        """Deals of these companies, via batch associations (no search cap, no search limit).

        Also yields, per deal, the queried company that is its primary company (the
        company-to-deal association labelled Primary), so those deals need no
        second association read to find it.
        """
        by_company = self._associations("companies", "deals", list(query.account_ids or ()))
        primary = hf.primary_deals(by_company)
        # Company by company, so a page's deals share few companies and each company
        # is read about once per sweep, not once per page it appears on.
        deal_ids = list(
            dict.fromkeys(str(t["toObjectId"]) for targets in by_company.values() for t in targets)
        )
        for chunk in chunks(deal_ids, BATCH):
            deals = self._batch_read("deals", chunk, hf.deal_properties(self.fields))
            deals = [d for d in deals if hp.matches(d.get("properties") or {}, query)]
            if deals:
                yield (
                    deals,
                    {str(d["id"]): primary[str(d["id"])] for d in deals if str(d["id"]) in primary},
                )

    def _hydrate(
        self, deals: list[dict[str, Any]], primaries: dict[str, str] | None = None
    ) -> list[OpportunityRecord]:
        deal_ids = [str(d["id"]) for d in deals]
        self._expire_caches(deals)
        lookups = hf.Lookups(
            stages=self._stage_map(), owners=self._owner_map(), industries=self._industry_map()
        )
        known = primaries or {}
        companies = self._associations(
            "deals", "companies", [d for d in deal_ids if d not in known]
        )
        lookups.deal_company = {
            **{deal_id: hf.primary_company(targets) for deal_id, targets in companies.items()},
            **known,
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
        """v4 batch association reads, 1,000 ids per call; ids with none are absent."""
        found: dict[str, list] = {}
        for chunk in chunks(ids, ASSOCIATION_BATCH):
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

    def _expire_caches(self, deals: list[dict[str, Any]]) -> None:
        """Forget owners, stages and industry options when old, or when a deal names an
        owner or stage they do not know (a new rep, a new pipeline stage)."""
        props = [d.get("properties") or {} for d in deals]
        owners = {p.get("hubspot_owner_id") or "" for p in props} - {""} - self._looked_for
        stages = {p.get("dealstage") or "" for p in props} - {""} - self._looked_for
        unknown = (owners - set(self._owners or owners)) | (stages - set(self._stages or stages))
        if unknown or time.monotonic() - self._cached_at > CACHE_SECONDS:
            self._owners = self._stages = self._industries = None
            self._cached_at = time.monotonic()
            self._looked_for = self._looked_for | unknown if unknown else set()

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
                props = {self.fields[k]: hp.value(v) for k, v in update.changes.items()}
            except KeyError as exc:
                bad[index] = f"unknown field {exc.args[0]!r}"
                continue
            merged.setdefault(str(update.opportunity_id), {}).update(props)
        outcome: dict[str, WriteResult] = {}
        for chunk in chunks(list(merged.items()), BATCH):
            inputs = [{"id": deal_id, "properties": props} for deal_id, props in chunk]
            outcome.update(self._update_isolating("deals", inputs))
        return [
            WriteResult(str(u.opportunity_id), False, error=bad[i])
            if i in bad
            else outcome[str(u.opportunity_id)]
            for i, u in enumerate(updates)
        ]

    def _update_isolating(self, object_type: str, inputs: list[dict]) -> dict[str, WriteResult]:
        """A batch HubSpot refuses as a whole (a 400 for one record's value) is split in
        halves until the offending record is alone: the others are written, and the
        refusal becomes that record's result (as Salesforce reports it per record)."""
        try:
            return self._batch_update(object_type, inputs)
        except RejectedError as exc:
            if len(inputs) == 1:
                ref = inputs[0]["id"]
                return {ref: WriteResult(ref, False, error=str(exc))}
            half = len(inputs) // 2
            return {
                **self._update_isolating(object_type, inputs[:half]),
                **self._update_isolating(object_type, inputs[half:]),
            }

    def _batch_update(self, object_type: str, inputs: list[dict]) -> dict[str, WriteResult]:
        data = self.api.call(
            f"{object_type}.update",
            OBJECT_APIS[object_type],
            "update",
            batch_input_simple_public_object_batch_input={"inputs": inputs},
        )
        done = {str(r["id"]) for r in data.get("results") or []}
        errors = hp.errors_by(data.get("errors") or [], "ids", "id")
        return {
            i["id"]: WriteResult(i["id"], True)
            if i["id"] in done
            else WriteResult(i["id"], False, error=errors.get(i["id"], "not updated"))
            for i in inputs
        }

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[WriteResult]:
        """Tasks owned by the assignee; a manager named by email becomes its owner id."""
        if any("@" in t.assignee_id for t in tasks):
            by_email = {o.email.lower(): o.id for o in self._owner_map().values() if o.email}
            tasks = [
                replace(t, assignee_id=by_email.get(t.assignee_id.lower(), t.assignee_id))
                for t in tasks
            ]
        results: list[WriteResult] = []
        for chunk in chunks(list(tasks), BATCH):
            data = self.api.call(
                "tasks.create",
                OBJECT_APIS["tasks"],
                "create",
                batch_input_simple_public_object_batch_input_for_create={
                    "inputs": [hp.task_input(t) for t in chunk]
                },
            )
            results.extend(hp.created(chunk, data))
        return results

    def find_tasks(self, tasks: Sequence[TaskSpec]) -> dict[str, str]:
        """Key -> id of a task on the spec's deal whose body carries the key's marker."""
        deals = list(dict.fromkeys(str(t.opportunity_id) for t in tasks))
        linked = self._associations("deals", "tasks", deals)
        ids = list(
            dict.fromkeys(str(to["toObjectId"]) for targets in linked.values() for to in targets)
        )
        bodies = {
            task_id: hf.text(task.get("properties") or {}, "hs_task_body")
            for task_id, task in self._read_by_id("tasks", ids, ["hs_task_body"]).items()
        }
        found: dict[str, str] = {}
        for spec in tasks:
            on_deal = [str(to["toObjectId"]) for to in linked.get(str(spec.opportunity_id), [])]
            mark = task_marker(spec.key)
            match = next((i for i in on_deal if mark in bodies.get(i, "")), None)
            if match:
                found[spec.key] = match
        return found

    def task_states(self, task_ids: Sequence[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(map(str, task_ids)))
        found = self._read_by_id("tasks", ids, ["hs_task_status"])
        return {i: hp.task_state(found.get(i)) for i in ids}

    def close_tasks(self, closes: Sequence[TaskClose]) -> list[WriteResult]:
        ids = list(dict.fromkeys(str(c.task_id) for c in closes))
        found = self._read_by_id("tasks", ids, ["hs_task_status", "hs_task_body"])
        inputs: dict[str, dict] = {}
        for close in closes:
            task = found.get(str(close.task_id))
            if task is None or hp.task_state(task) == "completed":
                continue
            body = hf.text(task.get("properties") or {}, "hs_task_body")
            props = {"hs_task_status": "COMPLETED", "hs_task_body": hp.append(body, close.comment)}
            inputs[str(close.task_id)] = {"id": str(close.task_id), "properties": props}
        outcome: dict[str, WriteResult] = {}
        for chunk in chunks(list(inputs.values()), BATCH):
            outcome.update(self._batch_update("tasks", list(chunk)))
        return [hp.closed(str(c.task_id), found, outcome) for c in closes]

    def ensure_fields(self, tags: Sequence[str]) -> list[str]:
        return ensure_fields(self.api, self.fields, tags)


def from_config(config: HubSpotConfig, fields: FieldMap, redis: Any = None) -> HubSpotConnector:
    """The connector for ``config``; ``redis`` shares the portal's budget across workers."""
    buckets = hubspot_buckets(
        redis,
        calls_per_10s=config.calls_per_10s,
        search_per_second=config.search_per_second,
    )
    api = HubSpotApi.create(config.access_token, config.api_url, buckets=buckets)
    return HubSpotConnector(api, fields)
