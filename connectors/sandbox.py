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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors import sandbox_db as sdb
from connectors.base import FieldUpdate, OpportunityQuery, TaskClose, TaskSpec, WriteResult, chunks
from connectors.config import SandboxConfig
from integration.domain.fields import FieldMap
from integration.domain.model import OUTPUT_FIELDS, OpportunityRecord

SANDBOX_DB_NAME = "onstrategy-sandbox.db"
_IN_CHUNK = 500  # ids per IN (...) list, well below SQLite's variable limit

_OPPORTUNITY_COLUMNS = (
    "name",
    "account_id",
    "owner_id",
    "amount",
    "currency",
    "stage",
    "probability",
    "close_date",
    "created_date",
    "is_closed",
    "is_won",
    "type",
    "exception_reason",
    *OUTPUT_FIELDS,
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
        self._db.executescript(sdb.SCHEMA)
        sdb.upgrade(self._db)

    @classmethod
    def from_config(
        cls, config: SandboxConfig, fields: FieldMap, redis: Any = None
    ) -> SandboxConnector:
        """Build from its config; ``redis`` is not needed here."""
        return cls(config.path, fields)

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
        return sdb.stamp(self.clock())

    # -- the Connector Protocol ---------------------------------------------------------

    def read_opportunities(self, ids: Sequence[str]) -> list[OpportunityRecord]:
        """Records in the order of ``ids``; ids that do not exist are left out."""
        self.api_calls["read_opportunities"] += 1
        found: dict[str, OpportunityRecord] = {}
        for part in chunks(list(dict.fromkeys(ids)), _IN_CHUNK):
            marks = ",".join("?" * len(part))
            rows = self._query(f"{sdb.SELECT} WHERE o.id IN ({marks})", part)
            found.update((r.id, r) for r in self._records(rows))
        return [found[i] for i in ids if i in found]

    def iter_opportunities(self, query: OpportunityQuery) -> Iterator[list[OpportunityRecord]]:
        """Pages in id order, fetched by keyset (``id > last``) so memory stays flat."""
        where, params = sdb.where(query)
        after = ""
        while True:
            self.api_calls["iter_opportunities"] += 1
            sql = f"{sdb.SELECT} WHERE o.id > ?{where} ORDER BY o.id LIMIT ?"
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

    def find_tasks(self, tasks: Sequence[TaskSpec]) -> dict[str, str]:
        """Key -> id of tasks already created for these keys on their opportunities."""
        self.api_calls["find_tasks"] += 1
        found: dict[str, str] = {}
        for part in chunks(list(tasks), _IN_CHUNK):
            marks = ",".join("?" * len(part))
            sql = f"SELECT id, task_key, opportunity_id FROM tasks WHERE deleted = 0 AND opportunity_id IN ({marks}) ORDER BY seq"  # noqa: E501
            wanted = {(t.opportunity_id, t.key) for t in part}
            for row in self._query(sql, [t.opportunity_id for t in part]):
                if (row["opportunity_id"], row["task_key"]) in wanted:
                    found.setdefault(row["task_key"], row["id"])
        return found

    def task_states(self, task_ids: Sequence[str]) -> dict[str, str]:
        """``open``/``completed``/``deleted``; an id the CRM no longer has is ``deleted``."""
        self.api_calls["task_states"] += 1
        states = dict.fromkeys(task_ids, "deleted")
        for part in chunks(list(states), _IN_CHUNK):
            marks = ",".join("?" * len(part))
            for row in self._query(f"SELECT * FROM tasks WHERE id IN ({marks})", part):
                states[row["id"]] = sdb.task_state(row)
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
        return [sdb.record(r, products.get(r["id"], ())) for r in rows]

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
        values = {k: sdb.to_db(v) for k, v in changes.items()}
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
            (
                spec.key,
                spec.opportunity_id,
                spec.assignee_id,
                spec.subject,
                spec.body,
                spec.due_date.isoformat(),
                spec.priority,
                self._now(),
            ),
        )
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
                row = {"last_modified": now, **{k: sdb.to_db(v) for k, v in fields.items()}}
                sdb.insert_row(db, "opportunities", row)
                if products is not None:
                    sdb.replace_products(db, row["id"], products)

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
                sdb.replace_products(db, opportunity_id, products)

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

    def existing_accounts(self, ids: Sequence[str]) -> set[str]:
        """Which of these account ids the CRM has (a target list check, no full read)."""
        found: set[str] = set()
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = list(ids[start : start + _IN_CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = self._query(f"SELECT id FROM accounts WHERE id IN ({marks})", chunk)
            found.update(row["id"] for row in rows)
        return found

    def accounts(self) -> list[dict]:
        return [dict(r) for r in self._query("SELECT * FROM accounts ORDER BY id")]

    def is_seeded(self) -> bool:
        return bool(self._query("SELECT 1 FROM opportunities LIMIT 1"))

    def _insert(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        with self._tx() as db:
            for row in rows:
                sdb.insert_row(db, table, {k: sdb.to_db(v) for k, v in row.items()})

    def _set_task(self, task_id: str, assignment: str) -> None:
        with self._tx() as db:
            if db.execute(f"UPDATE tasks SET {assignment} WHERE id = ?", (task_id,)).rowcount == 0:
                raise KeyError(task_id)


from_config = SandboxConnector.from_config
