"""Salesforce connector: read opportunities, write the output fields, manage coaching tasks.

Every method is batch-first and spends one API call per 200 records: one SOQL
query per 200 ids (relationship fields and a product subquery included) and
sObject Collections (``composite/sobjects``, at most 200 records, ``allOrNone``
false) for writes. Collections answer HTTP 200 even when items fail, so each
item's result is read; ``UNABLE_TO_LOCK_ROW`` items are retried with backoff
(Salesforce "Record Locking Cheat Sheet": concurrent writes to children of one
account contend for its lock).

``api_calls`` counts calls by kind; ``api_usage`` is the org's daily API usage
from the ``Sforce-Limit-Info`` header, with a warning logged above 80%.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import requests
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
)

from connectors import salesforce_errors as errors
from connectors import salesforce_setup, salesforce_soql
from connectors.base import (
    AuthError,
    ConnectorError,
    FieldUpdate,
    OpportunityQuery,
    OpportunityRecord,
    RateLimited,
    TaskClose,
    TaskSpec,
    TransientError,
    WriteResult,
    chunks,
    task_marker,
)
from connectors.config import SalesforceConfig
from connectors.salesforce_auth import Login, choose
from integration.domain.fields import FieldMap
from integration.domain.sfid import to18

log = logging.getLogger(__name__)

BATCH = 200  # sObject Collections maximum records per request
#: Pauses before the second and third attempt of a call that may safely run again.
TRANSIENT_PAUSES = (0.5, 1.0)
PRIORITIES = ("High", "Normal", "Low")
USAGE_WARNING = 0.8


class SalesforceConnector:
    """The :class:`connectors.base.Connector` for Salesforce, on ``simple_salesforce``."""

    name = "salesforce"

    def __init__(
        self,
        login: Login,
        fields: FieldMap,
        *,
        renewable: bool = True,
        multi_currency: bool = False,
        org_currency: str = "",
        lock_retries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 60.0,
    ) -> None:
        if lock_retries < 0:
            raise ValueError(f"lock_retries must not be negative; got {lock_retries}")
        self._login = login
        self._fields = fields
        self._renewable = renewable
        self._org_currency = org_currency
        self._lock_retries = lock_retries
        self._backoff = backoff
        self._sleep = sleep
        self._timeout = timeout
        self._select = salesforce_soql.select_clause(fields, multi_currency)
        self._sf: Salesforce | None = None
        self.api_calls: Counter[str] = Counter()
        self.api_usage: tuple[int, int] | None = None  # (used, daily limit)

    # -- calls -------------------------------------------------------------

    def _client(self) -> Salesforce:
        if self._sf is None:
            self.api_calls["login"] += 1
            self._sf = self._login()
        return self._sf

    def _call(self, kind: str, fn: Callable[[Salesforce], Any], object_id: str = "") -> Any:
        """Run one API call, errors typed; a 5xx, timeout or dropped connection is tried
        again after :data:`TRANSIENT_PAUSES` unless the call creates records (its first
        attempt may have created them: the job's retry adopts them instead)."""
        pauses = [] if kind == "create" else list(TRANSIENT_PAUSES)
        while True:
            try:
                return self._call_once(kind, fn, object_id)
            except RateLimited:
                raise  # the org's daily allowance: another attempt now only spends more
            except TransientError:
                if not pauses:
                    raise
                self._sleep(pauses.pop(0))

    def _call_once(self, kind: str, fn: Callable[[Salesforce], Any], object_id: str) -> Any:
        """Run one API call, re-authenticating once on an expired session, errors typed."""
        self.api_calls[kind] += 1
        try:
            try:
                result = fn(self._client())
            except SalesforceExpiredSession:
                if not self._renewable:
                    raise AuthError(
                        errors.CRM,
                        401,
                        object_id,
                        "the access token has expired and cannot "
                        "be renewed; set a new ONSTRATEGY_SALESFORCE_ACCESS_TOKEN or use "
                        "JWT or username/password sign-in",
                    ) from None
                self._sf = None
                result = fn(self._client())
        except SalesforceAuthenticationFailed as exc:
            raise errors.from_login(exc) from exc
        except SalesforceError as exc:
            raise errors.from_salesforce(exc, object_id) from exc
        except requests.RequestException as exc:
            raise errors.from_requests(exc) from exc
        self._watch_usage()
        return result

    def _watch_usage(self) -> None:
        usage = self._sf.api_usage.get("api-usage") if self._sf else None
        if usage is None:
            return
        warned = self.api_usage is not None and _share(self.api_usage) >= USAGE_WARNING
        self.api_usage = (usage.used, usage.total)
        if not warned and _share(self.api_usage) >= USAGE_WARNING:
            log.warning("Salesforce API usage at %d of %d daily requests", *self.api_usage)

    def _pages(self, soql: str, deleted: bool = False, batch: int = 2000) -> Iterator[list[dict]]:
        """The rows of a query, one response page at a time (``nextRecordsUrl``)."""
        headers = {"Sforce-Query-Options": f"batchSize={max(200, min(batch, 2000))}"}
        page = self._call(
            "query",
            lambda sf: sf.query(
                soql, include_deleted=deleted, headers=headers, timeout=self._timeout
            ),
        )
        yield list(page["records"])
        while not page.get("done", True) and page.get("nextRecordsUrl"):
            page = self._call("query_more", self._more(page["nextRecordsUrl"], headers))
            yield list(page["records"])

    def _more(self, url: str, headers: dict[str, str]) -> Callable[[Salesforce], Any]:
        return lambda sf: sf.query_more(
            url, identifier_is_url=True, headers=headers, timeout=self._timeout
        )

    # -- opportunities -----------------------------------------------------

    def read_opportunities(self, ids: Sequence[str]) -> list[OpportunityRecord]:
        """One query per 200 ids; ids that no longer exist are simply absent."""
        unique = list(dict.fromkeys(to18(i) for i in ids))
        records: list[OpportunityRecord] = []
        for batch in chunks(unique, salesforce_soql.IDS_PER_QUERY):
            soql = salesforce_soql.by_ids(self._select, batch)
            for rows in self._pages(soql):
                records += [self._record(row) for row in rows]
        return records

    def iter_opportunities(self, query: OpportunityQuery) -> Iterator[list[OpportunityRecord]]:
        """Pages of at most ``query.page_size`` records, ordered by Id, memory flat."""
        if query.account_ids is None:
            groups: list[Sequence[str]] = [()]
        else:
            ids = list(query.account_ids)
            groups = list(chunks(ids, salesforce_soql.ACCOUNT_IDS_PER_QUERY))
        for accounts in groups:
            soql = salesforce_soql.matching(self._select, query, accounts)
            for rows in self._pages(soql, batch=query.page_size):
                for part in chunks(rows, max(1, query.page_size)):
                    yield [self._record(row) for row in part]

    def _record(self, row: dict[str, Any]) -> OpportunityRecord:
        return salesforce_soql.to_record(row, self._fields, self._org_currency)

    def update_opportunities(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        """Write output fields (logical names mapped to API names), 200 per call."""
        items = [(u.opportunity_id, self._opportunity_patch(u)) for u in updates]
        return self._write("update", "PATCH", items)

    def _opportunity_patch(self, update: FieldUpdate) -> dict[str, Any]:
        values = {self._fields[name]: value for name, value in update.changes.items()}
        return {"attributes": {"type": "Opportunity"}, "id": to18(update.opportunity_id), **values}

    # -- tasks -------------------------------------------------------------

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[WriteResult]:
        """Create Tasks on the opportunities, assigned to ``assignee_id``, 200 per call.

        The managers file may name a manager by email; those become user ids with
        one query for all of them.
        """
        users = self._user_ids([t.assignee_id for t in tasks if "@" in t.assignee_id])
        tasks = [
            replace(t, assignee_id=users.get(t.assignee_id.lower(), t.assignee_id)) for t in tasks
        ]
        return self._write("create", "POST", [(t.key, _task(t)) for t in tasks])

    def _user_ids(self, emails: Sequence[str]) -> dict[str, str]:
        """Lower-cased email -> active user id."""
        found: dict[str, str] = {}
        unique = sorted({e.lower() for e in emails})
        for batch in chunks(unique, salesforce_soql.IDS_PER_QUERY):
            soql = format_soql(
                "SELECT Id, Email FROM User WHERE IsActive = true AND Email IN {emails}",
                emails=list(batch),
            )
            for rows in self._pages(soql):
                found.update((row["Email"].lower(), row["Id"]) for row in rows)
        return found

    def find_tasks(self, tasks: Sequence[TaskSpec]) -> dict[str, str]:
        """Key -> id of a Task on the spec's opportunity whose description carries its marker.

        Description is a long text field SOQL cannot filter on, so the tasks of
        these opportunities are read (one query per 200) and matched here.
        """
        by_opp: dict[str, list[TaskSpec]] = {}
        for spec in tasks:
            by_opp.setdefault(to18(spec.opportunity_id), []).append(spec)
        found: dict[str, str] = {}
        for batch in chunks(list(by_opp), salesforce_soql.IDS_PER_QUERY):
            for rows in self._pages(salesforce_soql.tasks_on_query(batch)):
                for row in rows:
                    description = row.get("Description") or ""
                    for spec in by_opp.get(to18(row.get("WhatId") or ""), ()):
                        if task_marker(spec.key) in description:
                            found.setdefault(spec.key, to18(row["Id"]))
        return found

    def task_states(self, task_ids: Sequence[str]) -> dict[str, str]:
        """``open``/``completed``/``deleted``; ``queryAll`` sees tasks in the recycle bin."""
        given = {to18(i): i for i in task_ids}
        states = dict.fromkeys(task_ids, "deleted")  # purged tasks are not returned at all
        for batch in chunks(list(given), salesforce_soql.IDS_PER_QUERY):
            for rows in self._pages(salesforce_soql.task_states_query(batch), deleted=True):
                for row in rows:
                    states[given[to18(row["Id"])]] = _task_state(row)
        return states

    def close_tasks(self, closes: Sequence[TaskClose]) -> list[WriteResult]:
        """Complete tasks, appending the comment to their description (read first)."""
        descriptions = self._descriptions([c.task_id for c in closes])
        items = [
            (
                c.task_id,
                {
                    "attributes": {"type": "Task"},
                    "id": to18(c.task_id),
                    "Status": "Completed",
                    "Description": _append(descriptions.get(to18(c.task_id), ""), c.comment),
                },
            )
            for c in closes
        ]
        return self._write("close", "PATCH", items)

    def _descriptions(self, task_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for batch in chunks([to18(i) for i in task_ids], salesforce_soql.IDS_PER_QUERY):
            for rows in self._pages(salesforce_soql.task_descriptions_query(batch)):
                found.update({to18(r["Id"]): r.get("Description") or "" for r in rows})
        return found

    # -- setup -------------------------------------------------------------

    def ensure_fields(self, tags: Sequence[str]) -> list[str]:
        """Create missing Opportunity fields and fit picklist values; see ``salesforce_setup``."""
        return salesforce_setup.ensure_fields(self._call, self._fields, tags)

    # -- collections -------------------------------------------------------

    def _write(self, kind: str, method: str, items: list[tuple[str, dict]]) -> list[WriteResult]:
        """Collections writes, 200 per call; lock failures retried, results in input order."""
        results: dict[int, WriteResult] = {}
        pending = list(range(len(items)))
        for attempt in range(self._lock_retries + 1):
            locked = []
            for batch in chunks(pending, BATCH):
                for index, result in self._write_batch(kind, method, items, batch, results):
                    results[index] = result
                    if result.retryable and "UNABLE_TO_LOCK_ROW" in result.error:
                        locked.append(index)
            pending = locked
            if not pending or attempt == self._lock_retries:
                break
            self._sleep(self._backoff * 2**attempt * random.uniform(0.5, 1.0))
        return [results[i] for i in range(len(items))]

    def _write_batch(
        self,
        kind: str,
        method: str,
        items: list[tuple[str, dict]],
        batch: Sequence[int],
        done: dict[int, WriteResult],
    ) -> list[tuple[int, WriteResult]]:
        """One collections call. Once something was written, a failed call becomes
        per-record results so the ids of what was created are never lost."""
        try:
            outcome = self._collection(kind, method, [items[i][1] for i in batch])
        except ConnectorError as exc:
            if not any(r.ok for r in done.values()):
                raise
            failed = WriteResult("", False, error=str(exc), retryable=exc.retryable)
            return [(i, replace(failed, ref=items[i][0])) for i in batch]
        return [(i, _result(items[i][0], item)) for i, item in zip(batch, outcome, strict=True)]

    def _collection(self, kind: str, method: str, records: list[dict]) -> list[dict]:
        body = {"allOrNone": False, "records": records}
        return self._call(
            kind,
            lambda sf: sf.restful(
                "composite/sobjects", method=method, json=body, timeout=self._timeout
            ),
        )


def _result(ref: str, item: dict[str, Any]) -> WriteResult:
    if item.get("success"):
        return WriteResult(ref, True, id=to18(item.get("id") or ""))
    message, retryable = errors.record_error(item.get("errors") or [])
    return WriteResult(ref, False, error=message, retryable=retryable)


def _task(spec: TaskSpec) -> dict[str, Any]:
    return {
        "attributes": {"type": "Task"},
        "WhatId": to18(spec.opportunity_id),
        "OwnerId": to18(spec.assignee_id),
        "Subject": spec.subject[:255],
        "Description": spec.body,
        "ActivityDate": spec.due_date.isoformat(),
        "Priority": spec.priority if spec.priority in PRIORITIES else "Normal",
        "Status": "Not Started",
    }


def _task_state(row: dict[str, Any]) -> str:
    if row.get("IsDeleted"):
        return "deleted"
    return "completed" if row.get("IsClosed") else "open"


def _append(description: str, comment: str) -> str:
    return f"{description}\n\n{comment}" if description else comment


def _share(usage: tuple[int, int]) -> float:
    used, total = usage
    return used / total if total else 0.0


def from_config(
    config: SalesforceConfig, fields: FieldMap, redis: Any = None
) -> SalesforceConnector:
    """The connector for the configured org; sign-in happens on the first call.

    ``redis`` is accepted for parity with the other connectors and not needed:
    the session lives in the client and is renewed on expiry.
    """
    auth = choose(config)
    return SalesforceConnector(
        auth.login,
        fields,
        renewable=auth.renewable,
        multi_currency=config.multi_currency,
    )
