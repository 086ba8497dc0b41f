"""A local HTTP fake of the HubSpot endpoints the connector uses, in their documented shapes.

The SDK talks through urllib3, which ``responses`` cannot intercept, so tests
point ``host=`` at this server instead. It keeps deals, companies, line items,
tasks, owners, pipelines, properties and associations in memory; property values
are strings and only requested properties come back, as HubSpot does; batch
endpoints refuse more than 100 inputs (association reads more than 1,000) with a
400; creates answer 201; batch reads and updates answer 207 with per-input errors.
Every request is recorded, and :meth:`FakeHubSpot.fail_next` makes the next
requests answer 429 or 5xx.

    with FakeHubSpot() as hs:
        hs.add_deal("1", dealname="Acme", company="10")
        connector = HubSpotConnector(HubSpotApi.create("token", hs.url), fields)
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import hubspot_routes as routes
from .hubspot_routes import now_iso

PLURAL = {"deal": "deals", "company": "companies", "line_item": "line_items", "task": "tasks"}
ASSOCIATION_TYPES = {  # (from, to) -> [(typeId, label)]; primary first where there is one
    ("deals", "companies"): [(5, "Primary"), (341, None)],
    ("companies", "deals"): [(6, "Primary"), (342, None)],
    ("deals", "line_items"): [(19, None)],
    ("line_items", "deals"): [(20, None)],
    ("tasks", "deals"): [(216, None)],
    ("deals", "tasks"): [(215, None)],
}
DEFAULT_STAGES = [
    ("appointmentscheduled", "Appointment Scheduled", "0.2", "false"),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", "false"),
    ("presentationscheduled", "Presentation Scheduled", "0.6", "false"),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", "false"),
    ("contractsent", "Contract Sent", "0.9", "false"),
    ("closedwon", "Closed Won", "1.0", "true"),
    ("closedlost", "Closed Lost", "0.0", "true"),
]
DEFAULT_INDUSTRIES = [
    ("MACHINERY", "Machinery"),
    ("HOSPITAL_HEALTH_CARE", "Hospital & Health Care"),
    ("COMPUTER_SOFTWARE", "Computer Software"),
    ("MANUFACTURING", "Manufacturing"),
    ("HEALTHCARE", "Healthcare"),
]


@dataclass
class Request:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]
    at: float = field(default_factory=time.time)  # when it arrived (benchmarks time writes)


@dataclass
class Failure:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    path: str | None
    remaining: int
    commit: bool = False  # carry the request out, then answer the failure


@dataclass
class State:
    """The in-memory portal; routes read and change it under ``lock``."""

    objects: dict[str, dict[str, dict]] = field(
        default_factory=lambda: {k: {} for k in PLURAL.values()}
    )
    associations: dict[tuple[str, str, str], dict[str, list]] = field(default_factory=dict)
    owners: list[dict] = field(default_factory=list)
    pipelines: list[dict] = field(default_factory=list)
    properties: dict[str, dict[str, dict]] = field(default_factory=dict)
    groups: dict[str, dict[str, dict]] = field(default_factory=dict)
    fail_updates: dict[str, str] = field(default_factory=dict)
    next_id: int = 900000
    lock: threading.RLock = field(default_factory=threading.RLock)

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        pairs = ((from_type, from_id, to_type, to_id), (to_type, to_id, from_type, from_id))
        for a, a_id, b, b_id in pairs:
            types = [
                {"category": "HUBSPOT_DEFINED", "typeId": t, "label": label}
                for t, label in ASSOCIATION_TYPES.get((a, b), [(1, None)])
            ]
            targets = self.associations.setdefault((a, b, a_id), {})
            targets[b_id] = types


class FakeHubSpot:
    """The fake portal plus its server; a context manager (or call start/stop)."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token  # when set, other bearer tokens get 401
        self.latency = 0.0  # seconds each answer waits, as a real API's round trip would
        self.state = State()
        self.requests: list[Request] = []
        self._failures: list[Failure] = []
        self._server: ThreadingHTTPServer | None = None
        self._seed()

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> FakeHubSpot:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHubSpot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- seeding -------------------------------------------------------------

    def add_owner(
        self,
        owner_id: str,
        first: str = "",
        last: str = "",
        email: str = "",
        teams: list[dict] | None = None,
    ) -> dict:
        owner = {
            "id": str(owner_id),
            "email": email,
            "firstName": first,
            "lastName": last,
            "userId": int(owner_id) + 1000 if str(owner_id).isdigit() else None,
            "type": "PERSON",
            "archived": False,
            "teams": teams or [],
            "createdAt": now_iso(),
            "updatedAt": now_iso(),
        }
        self.state.owners.append(owner)
        return owner

    def add_pipeline(self, pipeline_id: str, label: str, stages: list[tuple]) -> None:
        """``stages``: ``(id, label, probability fraction string, isClosed string)``."""
        self.state.pipelines.append(
            {
                "id": pipeline_id,
                "label": label,
                "displayOrder": len(self.state.pipelines),
                "archived": False,
                "createdAt": now_iso(),
                "updatedAt": now_iso(),
                "stages": [
                    {
                        "id": sid,
                        "label": slabel,
                        "displayOrder": i,
                        "archived": False,
                        "metadata": {"probability": prob, "isClosed": closed},
                        "createdAt": now_iso(),
                        "updatedAt": now_iso(),
                    }
                    for i, (sid, slabel, prob, closed) in enumerate(stages)
                ],
            }
        )

    def add_company(self, company_id: str, **props: Any) -> dict:
        return self._add("companies", company_id, props)

    def add_line_item(self, item_id: str, name: str, deal: str | None = None, **props: Any) -> dict:
        item = self._add("line_items", item_id, {"name": name, **props})
        if deal is not None:
            self.state.associate("line_items", str(item_id), "deals", str(deal))
        return item

    def add_deal(
        self,
        deal_id: str,
        *,
        company: str | None = None,
        companies: tuple[str, ...] = (),
        line_items: tuple[str, ...] = (),
        **props: Any,
    ) -> dict:
        """A deal; ``company`` is its primary company, ``companies`` non-primary ones,
        ``line_items`` names of line items created for it."""
        props.setdefault("dealname", f"Deal {deal_id}")
        deal = self._add("deals", deal_id, props)
        if company is not None:
            self.state.associate("deals", str(deal_id), "companies", str(company))
        for other in companies:
            self.state.associate("deals", str(deal_id), "companies", str(other))
            targets = self.state.associations[("deals", "companies", str(deal_id))]
            targets[str(other)] = [{"category": "HUBSPOT_DEFINED", "typeId": 341, "label": None}]
            inverse = self.state.associations[("companies", "deals", str(other))]
            inverse[str(deal_id)] = [{"category": "HUBSPOT_DEFINED", "typeId": 342, "label": None}]
        for name in line_items:
            self.add_line_item(self.state.new_id(), name, deal=str(deal_id))
        return deal

    def add_task(self, task_id: str, deal: str | None = None, **props: Any) -> dict:
        props.setdefault("hs_task_status", "NOT_STARTED")
        task = self._add("tasks", task_id, props)
        if deal is not None:
            self.state.associate("tasks", str(task_id), "deals", str(deal))
        return task

    def add_property(self, object_type: str, definition: dict) -> None:
        self.state.properties.setdefault(object_type, {})[definition["name"]] = definition

    def delete(self, object_type: str, object_id: str) -> None:
        self.state.objects[object_type][str(object_id)]["archived"] = True

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        headers: dict[str, str] | None = None,
        body: dict | None = None,
        path: str | None = None,
        commit: bool = False,
    ) -> None:
        """Answer the next ``count`` requests (whose path contains ``path``) with ``status``.

        ``commit=True`` carries each request out first: a create that happened but
        whose answer the client never sees (a timeout after the commit).
        """
        default = {
            "status": "error",
            "message": f"fake failure {status}",
            "correlationId": "fake",
            "category": "FAKE",
        }
        if status == 429:
            default = {
                "status": "error",
                "errorType": "RATE_LIMIT",
                "correlationId": "fake",
                "message": "You have reached your ten_secondly_rolling limit.",
                "policyName": "TEN_SECONDLY_ROLLING",
            }
        self._failures.append(Failure(status, headers or {}, body or default, path, count, commit))

    def stop_failing(self) -> None:
        """Forget every failure still planned."""
        self._failures.clear()

    # -- inspection ----------------------------------------------------------

    def deal_properties(self, deal_id: str) -> dict[str, str]:
        return dict(self.state.objects["deals"][str(deal_id)]["properties"])

    def task(self, task_id: str) -> dict:
        return self.state.objects["tasks"][str(task_id)]

    def tasks_for_deal(self, deal_id: str) -> list[dict]:
        ids = self.state.associations.get(("deals", "tasks", str(deal_id)), {})
        return [self.state.objects["tasks"][i] for i in ids]

    def property(self, object_type: str, name: str) -> dict | None:
        return self.state.properties.get(object_type, {}).get(name)

    def calls(self, method: str | None = None, path: str = "") -> list[Request]:
        """Recorded requests, optionally only one method and paths containing ``path``."""
        return [
            r for r in self.requests if (method is None or r.method == method) and path in r.path
        ]

    # -- internals -----------------------------------------------------------

    def _add(self, object_type: str, object_id: str, props: dict[str, Any]) -> dict:
        stamp = now_iso()
        strings = {k: routes.as_string(v) for k, v in props.items() if v is not None}
        strings.update(hs_object_id=str(object_id), createdate=stamp, hs_lastmodifieddate=stamp)
        record = {
            "id": str(object_id),
            "properties": strings,
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }
        self.state.objects[object_type][str(object_id)] = record
        return record

    def _seed(self) -> None:
        self.add_pipeline("default", "Sales Pipeline", DEFAULT_STAGES)
        self.add_property(
            "companies",
            {
                "name": "industry",
                "label": "Industry",
                "type": "enumeration",
                "fieldType": "select",
                "groupName": "companyinformation",
                "options": [
                    {"label": label, "value": value, "displayOrder": i, "hidden": False}
                    for i, (value, label) in enumerate(DEFAULT_INDUSTRIES)
                ],
            },
        )
        self.state.groups["deals"] = {
            "dealinformation": {"name": "dealinformation", "label": "Deal information"}
        }

    def _take_failure(self, path: str) -> Failure | None:
        for failure in self._failures:
            if failure.remaining > 0 and (failure.path is None or failure.path in path):
                failure.remaining -= 1
                return failure
        return None

    def handle(self, method: str, raw_path: str, body: bytes, headers: dict[str, str]) -> tuple:
        """(status, headers, JSON-able body) for one request; records it first."""
        parts = urlsplit(raw_path)
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            return 400, {}, routes.error(400, "Invalid input JSON")
        self.requests.append(Request(method, parts.path, parse_qs(parts.query), payload, headers))
        expected = f"Bearer {self.token}" if self.token else None
        if expected and headers.get("authorization") != expected:
            return (
                401,
                {},
                routes.error(
                    401, "Authentication credentials not found.", "INVALID_AUTHENTICATION"
                ),
            )
        failure = self._take_failure(parts.path)
        if failure is not None:
            if failure.commit:
                with self.state.lock:
                    routes.dispatch(self.state, method, parts.path, parse_qs(parts.query), payload)
            return failure.status, failure.headers, failure.body
        with self.state.lock:
            return routes.dispatch(self.state, method, parts.path, parse_qs(parts.query), payload)


def _handler(fake: FakeHubSpot) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = fake.handle(self.command, self.path, body, headers)
            if fake.latency:
                time.sleep(fake.latency)
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read ``fake.requests`` instead."""

    return Handler
