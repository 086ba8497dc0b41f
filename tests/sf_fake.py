"""An in-memory Salesforce org behind ``responses``: the REST endpoints the connector uses.

Opportunities, accounts, users, tasks, line items and Opportunity custom
fields live in dicts; ``register(rsps)`` adds ``responses`` callbacks for
``query``/``queryAll`` (a small SOQL subset: ``Id IN``, ``AccountId IN``,
``LastModifiedDate >=``, ``IsClosed = false``, ``CloseDate >=``, ``ORDER BY
Id``, with ``nextRecordsUrl`` paging), sObject Collections POST/PATCH, the
Opportunity describe, the Tooling ``CustomField`` resource and the SOAP
``login()``. Every call is recorded in ``calls``. Failures are injected with
``fail_next`` (whole request) and ``fail_record`` (one collection item).

Usage::

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        org = SalesforceFake()
        org.register(rsps)
        connector = org.connector()
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import responses

from connectors.config import SalesforceConfig
from connectors.salesforce import SalesforceConnector
from connectors.salesforce_auth import MODES, Auth
from integration.domain.fields import FieldMap
from integration.domain.sfid import to18

INSTANCE = "acme.my.salesforce.com"
VERSION = "62.0"
MAX_COLLECTION = 200
STANDARD_FIELDS = ("Id", "Name", "Amount", "StageName", "Probability", "CloseDate", "Type")
DESCRIBE_TYPES = {
    "Picklist": "picklist",
    "Text": "string",
    "LongTextArea": "textarea",
    "Checkbox": "boolean",
}


@dataclass
class Call:
    kind: str
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None


def sfid(prefix: str, number: int) -> str:
    """A well-formed 18-character id: key prefix + number."""
    return to18(f"{prefix}{number:012d}")


class SalesforceFake:
    """One org: records, custom fields, sessions, call log and injected failures."""

    def __init__(self, page_size: int = 2000, api_limit: int = 100_000) -> None:
        self.page_size = page_size
        self.api_limit = api_limit
        self.opportunities: dict[str, dict[str, Any]] = {}
        self.accounts: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.line_items: dict[str, list[str]] = {}
        self.custom_fields: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.sessions = {"TOKEN"}
        self.integration_user = sfid("005", 999)
        self.deny_metadata = False
        self._failures: list[tuple[int, Any]] = []
        self._record_failures: dict[str, list[tuple[str, str]]] = {}
        self._create_failures: list[tuple[int, bool]] = []
        self._cursors: dict[str, list[dict]] = {}
        self._ids = itertools.count(1)
        self._logins = itertools.count(1)

    # -- seeding -----------------------------------------------------------

    def add_user(self, name: str, **values: Any) -> str:
        uid = values.pop("Id", None) or sfid("005", next(self._ids))
        self.users[uid] = {
            "Id": uid,
            "Name": name,
            "Email": "",
            "ManagerId": None,
            "Department": None,
            **values,
        }
        return uid

    def add_account(self, name: str, **values: Any) -> str:
        aid = values.pop("Id", None) or sfid("001", next(self._ids))
        self.accounts[aid] = {"Id": aid, "Name": name, **values}
        return aid

    def add_opportunity(
        self,
        name: str,
        account_id: str | None = None,
        owner_id: str | None = None,
        products: tuple[str, ...] = (),
        **values: Any,
    ) -> str:
        oid = values.pop("Id", None) or sfid("006", next(self._ids))
        self.opportunities[oid] = {
            "Id": oid,
            "Name": name,
            "AccountId": account_id,
            "OwnerId": owner_id,
            "IsClosed": False,
            "IsWon": False,
            "StageName": "Prospecting",
            "LastModifiedDate": "2026-01-05T10:00:00.000+0000",
            "CreatedDate": "2025-11-20T09:00:00.000+0000",
            **values,
        }
        self.line_items[oid] = list(products)
        return oid

    def add_custom_field(self, api_name: str, metadata: dict[str, Any]) -> None:
        tooling_id = sfid("00N", next(self._ids))
        self.custom_fields[api_name] = {"Id": tooling_id, "Metadata": metadata}

    # -- failure injection -------------------------------------------------

    def fail_next(self, status: int, code: str = "", message: str = "", times: int = 1) -> None:
        """The next ``times`` REST calls answer ``status`` with a Salesforce error body."""
        body = [{"errorCode": code, "message": message}] if code else message
        self._failures += [(status, body)] * times

    def fail_creates(self, status: int, times: int = 1, commit: bool = False) -> None:
        """The next ``times`` collection creates answer ``status``; with ``commit`` the
        records are created first (the client sees a failure, the org has the records)."""
        self._create_failures += [(status, commit)] * times

    def stop_failing(self) -> None:
        """Forget every failure still planned."""
        self._failures.clear()
        self._create_failures.clear()
        self._record_failures.clear()

    def fail_record(self, record_id: str, code: str, message: str = "", times: int = 1) -> None:
        """Collection items for this id (or ``WhatId`` on create) fail ``times`` times."""
        self._record_failures.setdefault(to18(record_id), []).extend([(code, message)] * times)

    def expire_sessions(self) -> None:
        self.sessions.clear()

    # -- wiring ------------------------------------------------------------

    def register(self, rsps: responses.RequestsMock) -> None:
        base = re.escape(f"https://{INSTANCE}/services/data/v{VERSION}/")
        routes: list[tuple[str, str, Callable]] = [
            ("GET", r"query(All)?/.*", self._query),
            ("PATCH", r"composite/sobjects", self._collection),
            ("POST", r"composite/sobjects", self._collection),
            ("GET", r"sobjects/Opportunity/describe", self._describe),
            ("GET", r"tooling/query.*", self._tooling_query),
            ("POST", r"tooling/sobjects/CustomField", self._tooling_create),
            ("GET", r"tooling/sobjects/CustomField/\w+", self._tooling_read),
            ("PATCH", r"tooling/sobjects/CustomField/\w+", self._tooling_update),
        ]
        for method, path, handler in routes:
            rsps.add_callback(method, re.compile(base + path), callback=self._guard(handler))

    def register_login(self, rsps: responses.RequestsMock, domain: str = "acme.my") -> None:
        """The SOAP ``login()`` endpoint used by username/password sign-in."""
        url = f"https://{domain}.salesforce.com/services/Soap/u/{VERSION}"
        rsps.add_callback("POST", url, callback=self._login)

    def connector(self, fields: FieldMap | None = None, **options: Any) -> SalesforceConnector:
        """A connector signed in with the access token ``TOKEN`` (not renewable)."""
        config = SalesforceConfig(
            instance_url=f"https://{INSTANCE}", access_token="TOKEN", api_version=VERSION
        )
        return _connector(config, "token", fields, options)

    def password_connector(
        self, fields: FieldMap | None = None, **options: Any
    ) -> SalesforceConnector:
        config = SalesforceConfig(
            instance_url=f"https://{INSTANCE}",
            username="integration@acme.example",
            password="pw",
            security_token="tok",
            api_version=VERSION,
        )
        return _connector(config, "password", fields, options)

    def kinds(self) -> list[str]:
        return [c.kind for c in self.calls]

    # -- handlers ----------------------------------------------------------

    def _guard(self, handler: Callable) -> Callable:
        def respond(request: Any) -> tuple[int, dict[str, str], str]:
            headers = {
                "Content-Type": "application/json",
                "Sforce-Limit-Info": f"api-usage={len(self.calls) + 1}/{self.api_limit}",
            }
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in self.sessions:
                body = [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired"}]
                return 401, headers, json.dumps(body)
            if self._failures:
                status, body = self._failures.pop(0)
                self.calls.append(Call("failed", request.method, urlparse(request.url).path))
                return status, headers, json.dumps(body) if not isinstance(body, str) else body
            status, body = handler(request)
            return status, headers, "" if body is None else json.dumps(body)

        return respond

    def _query(self, request: Any) -> tuple[int, Any]:
        url = urlparse(request.url)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        cursor = url.path.rsplit("/", 1)[1]
        if cursor in self._cursors:
            self.calls.append(Call("query_more", "GET", url.path))
            return 200, self._page(self._cursors.pop(cursor))
        self.calls.append(Call("query", "GET", url.path, params))
        rows = self._select(params["q"], include_deleted="queryAll" in url.path)
        return 200, self._page(rows)

    def _page(self, rows: list[dict]) -> dict[str, Any]:
        page, rest = rows[: self.page_size], rows[self.page_size :]
        result: dict[str, Any] = {"totalSize": len(rows), "done": not rest, "records": page}
        if rest:
            cursor = f"01gD0000000cursor{next(self._ids)}-{self.page_size}"
            self._cursors[cursor] = rest
            result["nextRecordsUrl"] = f"/services/data/v{VERSION}/query/{cursor}"
        return result

    def _select(self, soql: str, include_deleted: bool) -> list[dict]:
        sobject = re.search(r"FROM (\w+)(?= WHERE| ORDER|$)", soql).group(1)
        if sobject == "User":
            emails = set(re.findall(r"'([^']+)'", soql.split("Email IN", 1)[1]))
            return [
                {"Id": u["Id"], "Email": u["Email"]}
                for u in self.users.values()
                if (u.get("Email") or "").lower() in emails
            ]
        if sobject == "Task":
            rows = [t for t in self.tasks.values() if include_deleted or not t["IsDeleted"]]
            return [dict(t) for t in rows if _matches(t, soql)]
        rows = [o for o in self.opportunities.values() if _matches(o, soql)]
        return [self._opportunity_row(o) for o in sorted(rows, key=lambda o: o["Id"])]

    def _opportunity_row(self, opp: dict[str, Any]) -> dict[str, Any]:
        owner = self.users.get(opp.get("OwnerId") or "")
        account = self.accounts.get(opp.get("AccountId") or "")
        products = [{"Product2": {"Name": name}} for name in self.line_items.get(opp["Id"], [])]
        subquery = {"totalSize": len(products), "done": True, "records": products}
        return {
            "attributes": {"type": "Opportunity"},
            **opp,
            "Account": account,
            "Owner": owner,
            "OpportunityLineItems": subquery if products else None,
        }

    def _collection(self, request: Any) -> tuple[int, Any]:
        body = json.loads(request.body)
        kind = "create" if request.method == "POST" else "update"
        self.calls.append(Call(kind, request.method, urlparse(request.url).path, body=body))
        if len(body["records"]) > MAX_COLLECTION:
            return 400, [{"errorCode": "EXCEEDED_ID_LIMIT", "message": "more than 200 records"}]
        apply = self._create if kind == "create" else self._update
        if kind == "create" and self._create_failures:
            status, commit = self._create_failures.pop(0)
            for record in body["records"] if commit else ():
                self._item(record, apply)
            return status, [{"errorCode": "SERVER_UNAVAILABLE", "message": "try again later"}]
        return 200, [self._item(record, apply) for record in body["records"]]

    def _item(self, record: dict[str, Any], apply: Callable) -> dict[str, Any]:
        key = to18(record.get("id") or record.get("WhatId") or "")
        pending = self._record_failures.get(key)
        if pending:
            code, message = pending.pop(0)
            return {
                "success": False,
                "errors": [{"statusCode": code, "message": message, "fields": []}],
            }
        return apply(record)

    def _update(self, record: dict[str, Any]) -> dict[str, Any]:
        store = self.tasks if record["attributes"]["type"] == "Task" else self.opportunities
        rid = to18(record["id"])
        if rid not in store:
            return {
                "id": rid,
                "success": False,
                "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "deleted"}],
            }
        values = {k: v for k, v in record.items() if k not in ("attributes", "id")}
        store[rid].update(values, LastModifiedById=self.integration_user)
        if values.get("Status") == "Completed":
            store[rid]["IsClosed"] = True
        return {"id": rid, "success": True, "errors": []}

    def _create(self, record: dict[str, Any]) -> dict[str, Any]:
        tid = sfid("00T", next(self._ids))
        values = {k: v for k, v in record.items() if k != "attributes"}
        self.tasks[tid] = {"Id": tid, "IsClosed": False, "IsDeleted": False, **values}
        return {"id": tid, "success": True, "errors": []}

    def _describe(self, request: Any) -> tuple[int, Any]:
        self.calls.append(Call("describe", "GET", urlparse(request.url).path))
        fields = [
            {"name": name, "type": "string", "picklistValues": []} for name in STANDARD_FIELDS
        ]
        for name, spec in self.custom_fields.items():
            meta = spec["Metadata"]
            values = ((meta.get("valueSet") or {}).get("valueSetDefinition") or {}).get("value")
            fields.append(
                {
                    "name": name,
                    "type": DESCRIBE_TYPES.get(meta["type"], "string"),
                    "picklistValues": [
                        {"value": v["fullName"], "active": True} for v in values or []
                    ],
                }
            )
        return 200, {"name": "Opportunity", "fields": fields}

    def _tooling_query(self, request: Any) -> tuple[int, Any]:
        soql = parse_qs(urlparse(request.url).query)["q"][0]
        self.calls.append(Call("tooling", "GET", urlparse(request.url).path, {"q": soql}))
        name = re.search(r"DeveloperName = '(\w+)'", soql).group(1) + "__c"
        found = [{"Id": self.custom_fields[name]["Id"]}] if name in self.custom_fields else []
        return 200, {"totalSize": len(found), "done": True, "records": found}

    def _tooling_create(self, request: Any) -> tuple[int, Any]:
        body = json.loads(request.body)
        self.calls.append(Call("tooling", "POST", urlparse(request.url).path, body=body))
        if self.deny_metadata:
            return 400, [
                {
                    "errorCode": "INSUFFICIENT_ACCESS_OR_READONLY",
                    "message": "insufficient access rights on object id",
                }
            ]
        name = body["FullName"].split(".", 1)[1]
        self.add_custom_field(name, body["Metadata"])
        return 201, {"id": self.custom_fields[name]["Id"], "success": True, "errors": []}

    def _by_tooling_id(self, request: Any) -> tuple[str, dict[str, Any]]:
        tooling_id = urlparse(request.url).path.rsplit("/", 1)[1]
        return next((n, s) for n, s in self.custom_fields.items() if s["Id"] == tooling_id)

    def _tooling_read(self, request: Any) -> tuple[int, Any]:
        self.calls.append(Call("tooling", "GET", urlparse(request.url).path))
        name, spec = self._by_tooling_id(request)
        return 200, {
            "Id": spec["Id"],
            "FullName": f"Opportunity.{name}",
            "Metadata": json.loads(json.dumps(spec["Metadata"])),
        }

    def _tooling_update(self, request: Any) -> tuple[int, Any]:
        body = json.loads(request.body)
        self.calls.append(Call("tooling", "PATCH", urlparse(request.url).path, body=body))
        if self.deny_metadata:
            return 400, [{"errorCode": "INSUFFICIENT_ACCESS_OR_READONLY", "message": "no"}]
        self._by_tooling_id(request)[1]["Metadata"] = body["Metadata"]
        return 204, None

    def _login(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.calls.append(Call("login", "POST", urlparse(request.url).path))
        session = f"SESSION{next(self._logins)}"
        self.sessions.add(session)
        return (
            200,
            {"Content-Type": "text/xml"},
            LOGIN_RESPONSE.format(session=session, instance=INSTANCE, version=VERSION),
        )


def _connector(
    config: SalesforceConfig, mode: str, fields: FieldMap | None, options: dict[str, Any]
) -> SalesforceConnector:
    _, build, renewable = MODES[mode]
    auth = Auth(mode, build(config), renewable)
    options.setdefault("sleep", lambda seconds: None)
    return SalesforceConnector(
        auth.login, fields or FieldMap.for_crm("salesforce"), renewable=auth.renewable, **options
    )


def _matches(row: dict[str, Any], soql: str) -> bool:
    """The small WHERE subset the connector emits."""
    checks = [
        (r"(?<![\w.])Id IN \(([^)]*)\)", lambda m: row["Id"] in _ids(m.group(1))),
        (r"AccountId IN \(([^)]*)\)", lambda m: row.get("AccountId") in _ids(m.group(1))),
        (r"WhatId IN \(([^)]*)\)", lambda m: to18(row.get("WhatId") or "") in _ids(m.group(1))),
        (
            r"LastModifiedDate >= (\S+)",
            lambda m: _when(row["LastModifiedDate"]) >= _when(m.group(1)),
        ),
        (
            r"\(IsClosed = false OR CloseDate >= (\S+)\)",
            lambda m: not row["IsClosed"] or (row.get("CloseDate") or "") >= m.group(1).rstrip(")"),
        ),
        (r"(?<!\()IsClosed = false(?! OR)", lambda m: not row["IsClosed"]),
    ]
    for pattern, test in checks:
        match = re.search(pattern, soql)
        if match and not test(match):
            return False
    return True


def _ids(raw: str) -> set[str]:
    return {to18(part.strip().strip("'")) for part in raw.split(",") if part.strip()}


def _when(value: str) -> datetime:
    value = value.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", value):
        value = value[:-2] + ":" + value[-2:]
    return datetime.fromisoformat(value)


LOGIN_RESPONSE = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns="urn:partner.soap.sforce.com"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <soapenv:Body>
    <loginResponse>
      <result>
        <metadataServerUrl>https://{instance}/services/Soap/m/{version}/00D5w000004qGTO</metadataServerUrl>
        <passwordExpired>false</passwordExpired>
        <sandbox>false</sandbox>
        <serverUrl>https://{instance}/services/Soap/u/{version}/00D5w000004qGTO</serverUrl>
        <sessionId>{session}</sessionId>
        <userId>0055w00000BhqR0AAJ</userId>
      </result>
    </loginResponse>
  </soapenv:Body>
</soapenv:Envelope>
"""
