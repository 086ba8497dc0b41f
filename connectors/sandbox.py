"""The embedded ``sandbox`` CRM: a small SQLite database behind the Connector Protocol.

It lets ``onstrategy demo`` and the tests run the whole pipeline with no CRM
account: accounts, owners (with their manager and team), opportunities with
the output fields, line items and tasks live in one file (or ``:memory:``).
It behaves like the real CRMs where the pipeline can tell the difference:
reads leave out deleted ids, writes bump ``last_modified``, tasks can be
completed or deleted by a "user" (:meth:`SandboxConnector.complete_task`,
:meth:`SandboxConnector.delete_task`), and every Protocol call is counted in
``api_calls`` like the real connectors do.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from connectors.base import (
    FieldMap,
    FieldUpdate,
    OpportunityQuery,
    TaskClose,
    TaskSpec,
    WriteResult,
    chunks,
)
from integration.model import OUTPUT_FIELDS, Account, Facts, Opportunity, OpportunityRecord, Owner

SANDBOX_DB_NAME = "onstrategy-sandbox.db"
_IN_CHUNK = 500  # ids per IN (...) list, well below SQLite's variable limit

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', industry TEXT NOT NULL DEFAULT '',
    employees INTEGER NOT NULL DEFAULT 0, annual_revenue REAL NOT NULL DEFAULT 0,
    country TEXT NOT NULL DEFAULT '', domain TEXT NOT NULL DEFAULT '',
    target_flag INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS owners (
    id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', email TEXT NOT NULL DEFAULT '',
    manager_id TEXT NOT NULL DEFAULT '', team TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS opportunities (
    id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', account_id TEXT, owner_id TEXT,
    amount REAL NOT NULL DEFAULT 0, currency TEXT NOT NULL DEFAULT 'USD',
    stage TEXT NOT NULL DEFAULT '', probability INTEGER NOT NULL DEFAULT 0,
    close_date TEXT NOT NULL DEFAULT '', is_closed INTEGER NOT NULL DEFAULT 0,
    is_won INTEGER NOT NULL DEFAULT 0, type TEXT NOT NULL DEFAULT '',
    exception_reason TEXT NOT NULL DEFAULT '',
    fit TEXT, reason TEXT, warning TEXT, comp_eligible INTEGER,
    last_modified TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS opportunities_account ON opportunities (account_id);
CREATE TABLE IF NOT EXISTS line_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT, opportunity_id TEXT NOT NULL,
    product TEXT NOT NULL, quantity INTEGER NOT NULL DEFAULT 1,
    unit_price REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS line_items_opportunity ON line_items (opportunity_id);
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, task_key TEXT NOT NULL DEFAULT '',
    opportunity_id TEXT NOT NULL, assignee_id TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '', body TEXT NOT NULL DEFAULT '',
    due_date TEXT NOT NULL DEFAULT '', priority TEXT NOT NULL DEFAULT 'Normal',
    status TEXT NOT NULL DEFAULT 'Open', deleted INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_opportunity ON tasks (opportunity_id);
"""

_SELECT = """
SELECT o.*, a.name AS a_name, a.industry AS a_industry, a.employees AS a_employees,
       a.annual_revenue AS a_annual_revenue, a.country AS a_country, a.domain AS a_domain,
       a.target_flag AS a_target_flag, w.name AS w_name, w.email AS w_email,
       w.manager_id AS w_manager_id, w.team AS w_team
FROM opportunities o
LEFT JOIN accounts a ON a.id = o.account_id
LEFT JOIN owners w ON w.id = o.owner_id
"""

_OPPORTUNITY_COLUMNS = (
    "name", "account_id", "owner_id", "amount", "currency", "stage", "probability",
    "close_date", "is_closed", "is_won", "type", "exception_reason",
    *OUTPUT_FIELDS,
)  # fmt: skip


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    """One fixed ISO format (UTC, microseconds) so timestamps compare as strings."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_since(value: str) -> str:
    """A query's ``modified_since`` in the stored format (naive means UTC)."""
    return _stamp(datetime.fromisoformat(value))


def default_path(database_url: str) -> str:
    """``onstrategy-sandbox.db`` next to a SQLite store; in the working dir otherwise.

    An in-memory store (``sqlite://`` or ``sqlite:///:memory:``) gets an
    in-memory sandbox, so a throwaway demo leaves no file behind.
    """
    if not database_url.startswith("sqlite"):
        return SANDBOX_DB_NAME
    _, _, rest = database_url.partition(":///")
    if not rest or rest == ":memory:":
        return ":memory:"
    return str(Path(rest).parent / SANDBOX_DB_NAME)


class SandboxConnector:
    """The embedded CRM. ``path`` is a file or ``":memory:"``; ``clock`` stamps writes."""

    name = "sandbox"

    def __init__(
        self,
        path: str = ":memory:",
        fields: FieldMap | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.path = path
        self.fields = fields or FieldMap.for_crm("sandbox")
        self.clock = clock
        self.api_calls: Counter[str] = Counter()
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.executescript(SCHEMA)

    @classmethod
    def from_settings(cls, settings: Any, fields: FieldMap, redis: Any = None) -> SandboxConnector:
        """Build from :class:`integration.settings.Settings`; ``redis`` is not needed here."""
        return cls(default_path(settings.database_url), fields)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock: web threads and jobs may share a connector."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _now(self) -> str:
        return _stamp(self.clock())

    # -- the Connector Protocol ---------------------------------------------------------

    def read_opportunities(self, ids: Sequence[str]) -> list[OpportunityRecord]:
        """Records in the order of ``ids``; ids that do not exist are left out."""
        self.api_calls["read_opportunities"] += 1
        found: dict[str, OpportunityRecord] = {}
        for part in chunks(list(dict.fromkeys(ids)), _IN_CHUNK):
            marks = ",".join("?" * len(part))
            rows = self._query(f"{_SELECT} WHERE o.id IN ({marks})", part)
            found.update((r.id, r) for r in self._records(rows))
        return [found[i] for i in ids if i in found]

    def iter_opportunities(self, query: OpportunityQuery) -> Iterator[list[OpportunityRecord]]:
        """Pages in id order, fetched by keyset (``id > last``) so memory stays flat."""
        where, params = _where(query)
        after = ""
        while True:
            self.api_calls["iter_opportunities"] += 1
            sql = f"{_SELECT} WHERE o.id > ?{where} ORDER BY o.id LIMIT ?"
            rows = self._query(sql, [after, *params, max(1, query.page_size)])
            if not rows:
                return
            yield self._records(rows)
            after = rows[-1]["id"]
            if len(rows) < query.page_size:
                return

    def update_opportunities(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        """Set only the given output fields; each successful update bumps ``last_modified``."""
        self.api_calls["update_opportunities"] += 1
        with self._tx() as db:
            return [self._update_one(db, u) for u in updates]

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[WriteResult]:
        """Create open tasks; ``WriteResult.id`` is the new ``T-000001``-style id."""
        self.api_calls["create_tasks"] += 1
        with self._tx() as db:
            return [self._create_one(db, t) for t in tasks]

    def task_states(self, task_ids: Sequence[str]) -> dict[str, str]:
        """``open``/``completed``/``deleted``; an id the CRM no longer has is ``deleted``."""
        self.api_calls["task_states"] += 1
        states = dict.fromkeys(task_ids, "deleted")
        for part in chunks(list(states), _IN_CHUNK):
            marks = ",".join("?" * len(part))
            for row in self._query(f"SELECT * FROM tasks WHERE id IN ({marks})", part):
                states[row["id"]] = _task_state(row)
        return states

    def close_tasks(self, closes: Sequence[TaskClose]) -> list[WriteResult]:
        """Mark tasks Completed and append the comment to the body (already done: no-op)."""
        self.api_calls["close_tasks"] += 1
        with self._tx() as db:
            return [self._close_one(db, c) for c in closes]

    def ensure_fields(self, tags: Sequence[str]) -> list[str]:
        """The sandbox schema already has every output field: nothing to create."""
        self.api_calls["ensure_fields"] += 1
        return []

    # -- row <-> record -----------------------------------------------------------------

    def _records(self, rows: list[sqlite3.Row]) -> list[OpportunityRecord]:
        products = self._products([r["id"] for r in rows])
        return [_record(r, products.get(r["id"], ())) for r in rows]

    def _products(self, ids: list[str]) -> dict[str, tuple[str, ...]]:
        found: dict[str, list[str]] = {}
        for part in chunks(ids, _IN_CHUNK):
            marks = ",".join("?" * len(part))
            sql = f"SELECT opportunity_id, product FROM line_items WHERE opportunity_id IN ({marks}) ORDER BY id"  # noqa: E501
            for row in self._query(sql, part):
                found.setdefault(row[0], []).append(row[1])
        return {k: tuple(v) for k, v in found.items()}

    def _update_one(self, db: sqlite3.Connection, update: FieldUpdate) -> WriteResult:
        unknown = set(update.changes) - set(OUTPUT_FIELDS)
        if unknown:
            error = f"not an output field: {', '.join(sorted(unknown))}"
            return WriteResult(update.opportunity_id, ok=False, error=error)
        if not self._set_columns(db, update.opportunity_id, update.changes):
            return WriteResult(update.opportunity_id, ok=False, error="no such opportunity")
        return WriteResult(update.opportunity_id, ok=True)

    def _set_columns(self, db: sqlite3.Connection, opp_id: str, changes: dict[str, Any]) -> bool:
        """UPDATE checked column names and bump ``last_modified``; False when no such row."""
        values = {k: _to_db(v) for k, v in changes.items()}
        values["last_modified"] = self._now()
        assignments = ", ".join(f"{k} = :{k}" for k in values)
        sql = f"UPDATE opportunities SET {assignments} WHERE id = :_id"
        return db.execute(sql, {**values, "_id": opp_id}).rowcount > 0

    def _create_one(self, db: sqlite3.Connection, spec: TaskSpec) -> WriteResult:
        exists = db.execute("SELECT 1 FROM opportunities WHERE id = ?", (spec.opportunity_id,))
        if exists.fetchone() is None:
            error = f"no such opportunity {spec.opportunity_id}"
            return WriteResult(spec.key, ok=False, error=error)
        cursor = db.execute(
            "INSERT INTO tasks (task_key, opportunity_id, assignee_id, subject, body, due_date,"
            " priority, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (spec.key, spec.opportunity_id, spec.assignee_id, spec.subject, spec.body,
             spec.due_date.isoformat(), spec.priority, self._now()),
        )  # fmt: skip
        task_id = f"T-{cursor.lastrowid:06d}"
        db.execute("UPDATE tasks SET id = ? WHERE seq = ?", (task_id, cursor.lastrowid))
        return WriteResult(spec.key, ok=True, id=task_id)

    def _close_one(self, db: sqlite3.Connection, close: TaskClose) -> WriteResult:
        row = db.execute("SELECT * FROM tasks WHERE id = ?", (close.task_id,)).fetchone()
        if row is None or row["deleted"]:
            return WriteResult(close.task_id, ok=False, error="no such task")
        if row["status"] != "Completed":
            body = f"{row['body']}\n\n{close.comment}" if row["body"] else close.comment
            db.execute(
                "UPDATE tasks SET status = 'Completed', body = ? WHERE id = ?",
                (body, close.task_id),
            )
        return WriteResult(close.task_id, ok=True)

    # -- helpers for the seed, the demo and tests (not part of the Protocol) ----------------

    def add_owners(self, owners: Iterable[dict[str, Any]]) -> None:
        """Insert or replace owners: dicts with id, name, email, manager_id, team."""
        self._insert("owners", owners)

    def add_accounts(self, accounts: Iterable[dict[str, Any]]) -> None:
        """Insert or replace accounts; ``target_flag`` is the CRM's own target field."""
        self._insert("accounts", accounts)

    def add_opportunities(self, opportunities: Iterable[dict[str, Any]]) -> None:
        """Insert or replace opportunities; a ``products`` list becomes line items."""
        now = self._now()
        with self._tx() as db:
            for opp in opportunities:
                fields = dict(opp)
                products = fields.pop("products", None)
                row = {"last_modified": now, **{k: _to_db(v) for k, v in fields.items()}}
                _insert_row(db, "opportunities", row)
                if products is not None:
                    _replace_products(db, row["id"], products)

    def add_opportunity(self, opportunity_id: str, **fields: Any) -> None:
        self.add_opportunities([{"id": opportunity_id, **fields}])

    def set_opportunity(self, opportunity_id: str, **fields: Any) -> None:
        """Change any opportunity field as a rep would (``products=[...]`` replaces lines)."""
        products = fields.pop("products", None)
        unknown = set(fields) - set(_OPPORTUNITY_COLUMNS)
        if unknown:
            raise ValueError(f"unknown opportunity field(s): {', '.join(sorted(unknown))}")
        with self._tx() as db:
            if not self._set_columns(db, opportunity_id, fields):
                raise KeyError(opportunity_id)
            if products is not None:
                _replace_products(db, opportunity_id, products)

    def set_account_target(self, account_id: str, flag: bool) -> None:
        """Flip the CRM's own target-account field (opportunities are not touched)."""
        with self._tx() as db:
            sql = "UPDATE accounts SET target_flag = ? WHERE id = ?"
            if db.execute(sql, (int(flag), account_id)).rowcount == 0:
                raise KeyError(account_id)

    def complete_task(self, task_id: str) -> None:
        """A manager marks the task done in the CRM."""
        self._set_task(task_id, "status = 'Completed'")

    def delete_task(self, task_id: str) -> None:
        """A user deletes the task in the CRM."""
        self._set_task(task_id, "deleted = 1")

    def opportunity_fields(self, opportunity_id: str) -> dict[str, Any]:
        """The raw stored row plus ``products`` (booleans as stored: 0/1/None)."""
        rows = self._query("SELECT * FROM opportunities WHERE id = ?", (opportunity_id,))
        if not rows:
            raise KeyError(opportunity_id)
        found = dict(rows[0])
        found["products"] = list(self._products([opportunity_id]).get(opportunity_id, ()))
        return found

    def tasks(self, opportunity_id: str | None = None, include_deleted: bool = False) -> list[dict]:
        """Tasks in creation order, optionally for one opportunity."""
        sql, params = "SELECT * FROM tasks WHERE 1 = 1", []
        if opportunity_id is not None:
            sql, params = sql + " AND opportunity_id = ?", [opportunity_id]
        if not include_deleted:
            sql += " AND deleted = 0"
        rows = self._query(sql + " ORDER BY seq", params)
        return [{k: v for k, v in dict(row).items() if k != "seq"} for row in rows]

    def owners(self) -> list[dict]:
        return [dict(r) for r in self._query("SELECT * FROM owners ORDER BY id")]

    def accounts(self) -> list[dict]:
        return [dict(r) for r in self._query("SELECT * FROM accounts ORDER BY id")]

    def is_seeded(self) -> bool:
        return bool(self._query("SELECT 1 FROM opportunities LIMIT 1"))

    def _insert(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        with self._tx() as db:
            for row in rows:
                _insert_row(db, table, {k: _to_db(v) for k, v in row.items()})

    def _set_task(self, task_id: str, assignment: str) -> None:
        with self._tx() as db:
            if db.execute(f"UPDATE tasks SET {assignment} WHERE id = ?", (task_id,)).rowcount == 0:
                raise KeyError(task_id)


def _where(query: OpportunityQuery) -> tuple[str, list[Any]]:
    """The query's criteria as SQL (AND-combined) and their parameters."""
    clauses, params = [], []
    if query.account_ids is not None:
        ids = list(query.account_ids)
        clauses.append(f"o.account_id IN ({','.join('?' * len(ids))})" if ids else "0")
        params += ids
    if query.modified_since:
        clauses.append("o.last_modified >= ?")
        params.append(_parse_since(query.modified_since))
    if query.open_only and query.closed_after is not None:
        clauses.append("(o.is_closed = 0 OR o.close_date >= ?)")
        params.append(query.closed_after.isoformat())
    elif query.open_only:
        clauses.append("o.is_closed = 0")
    return "".join(f" AND {c}" for c in clauses), params


def _record(row: sqlite3.Row, products: tuple[str, ...]) -> OpportunityRecord:
    opportunity = Opportunity(
        id=row["id"], name=row["name"], amount=float(row["amount"]), currency=row["currency"],
        stage=row["stage"], probability=int(row["probability"]), close_date=row["close_date"],
        is_closed=bool(row["is_closed"]), is_won=bool(row["is_won"]), type=row["type"],
        exception_reason=row["exception_reason"],
    )  # fmt: skip
    account = Account()
    if row["a_name"] is not None:
        account = Account(
            id=row["account_id"], name=row["a_name"], industry=row["a_industry"],
            employees=int(row["a_employees"]), annual_revenue=float(row["a_annual_revenue"]),
            country=row["a_country"], domain=row["a_domain"],
            crm_target_flag=bool(row["a_target_flag"]),
        )  # fmt: skip
    owner = Owner()
    if row["w_name"] is not None:
        owner = Owner(
            id=row["owner_id"], name=row["w_name"], email=row["w_email"],
            manager_id=row["w_manager_id"], team=row["w_team"],
        )  # fmt: skip
    facts = Facts("sandbox", opportunity, account, owner, products)
    comp = row["comp_eligible"]
    current = {
        "fit": row["fit"], "reason": row["reason"], "warning": row["warning"],
        "comp_eligible": None if comp is None else bool(comp),
    }  # fmt: skip
    return OpportunityRecord(facts, current, modified_at=row["last_modified"])


def _task_state(row: sqlite3.Row) -> str:
    if row["deleted"]:
        return "deleted"
    return "completed" if row["status"] == "Completed" else "open"


def _to_db(value: Any) -> Any:
    """Booleans as 0/1 and dates as ISO text, the way SQLite keeps them."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _insert_row(db: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    names = ", ".join(row)
    marks = ", ".join(f":{k}" for k in row)
    db.execute(f"INSERT OR REPLACE INTO {table} ({names}) VALUES ({marks})", row)


def _replace_products(db: sqlite3.Connection, opportunity_id: str, products: Iterable) -> None:
    """Replace the line items; a product is a name or a (name, quantity, unit_price) tuple."""
    db.execute("DELETE FROM line_items WHERE opportunity_id = ?", (opportunity_id,))
    for item in products:
        name, quantity, price = (item, 1, 0.0) if isinstance(item, str) else item
        db.execute(
            "INSERT INTO line_items (opportunity_id, product, quantity, unit_price)"
            " VALUES (?, ?, ?, ?)",
            (opportunity_id, name, quantity, price),
        )


from_settings = SandboxConnector.from_settings
