"""The sandbox CRM's SQLite schema and row mapping (no connector logic).

Kept apart from :mod:`connectors.sandbox` so the connector reads as the
Protocol it implements; everything here is plain SQL and plain data.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from connectors.base import OpportunityQuery
from integration.domain.model import Account, Facts, Opportunity, OpportunityRecord, Owner


def stamp(moment: datetime) -> str:
    """One fixed ISO format (UTC, microseconds) so timestamps compare as strings."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_since(value: str) -> str:
    """A query's ``modified_since`` in the stored format (naive means UTC)."""
    return stamp(datetime.fromisoformat(value))


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
    close_date TEXT NOT NULL DEFAULT '', created_date TEXT NOT NULL DEFAULT '',
    is_closed INTEGER NOT NULL DEFAULT 0,
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

#: Columns added after the first release: (table, column, declaration).
ADDED_COLUMNS = (("opportunities", "created_date", "TEXT NOT NULL DEFAULT ''"),)


def upgrade(db: sqlite3.Connection) -> None:
    """Add the columns a sandbox file made by an older release lacks."""
    for table, column, declaration in ADDED_COLUMNS:
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


SELECT = """
SELECT o.*, a.name AS a_name, a.industry AS a_industry, a.employees AS a_employees,
       a.annual_revenue AS a_annual_revenue, a.country AS a_country, a.domain AS a_domain,
       a.target_flag AS a_target_flag, w.name AS w_name, w.email AS w_email,
       w.manager_id AS w_manager_id, w.team AS w_team
FROM opportunities o
LEFT JOIN accounts a ON a.id = o.account_id
LEFT JOIN owners w ON w.id = o.owner_id
"""


def where(query: OpportunityQuery) -> tuple[str, list[Any]]:
    """The query's criteria as SQL (AND-combined) and their parameters."""
    clauses, params = [], []
    if query.account_ids is not None:
        ids = list(query.account_ids)
        clauses.append(f"o.account_id IN ({','.join('?' * len(ids))})" if ids else "0")
        params += ids
    if query.modified_since:
        clauses.append("o.last_modified >= ?")
        params.append(parse_since(query.modified_since))
    if query.open_only and query.closed_after is not None:
        clauses.append("(o.is_closed = 0 OR o.close_date >= ?)")
        params.append(query.closed_after.isoformat())
    elif query.open_only:
        clauses.append("o.is_closed = 0")
    return "".join(f" AND {c}" for c in clauses), params


def record(row: sqlite3.Row, products: tuple[str, ...]) -> OpportunityRecord:
    opportunity = Opportunity(
        id=row["id"],
        name=row["name"],
        amount=float(row["amount"]),
        currency=row["currency"],
        stage=row["stage"],
        probability=int(row["probability"]),
        close_date=row["close_date"],
        created_date=row["created_date"],
        is_closed=bool(row["is_closed"]),
        is_won=bool(row["is_won"]),
        type=row["type"],
        exception_reason=row["exception_reason"],
    )
    account = Account()
    if row["a_name"] is not None:
        account = Account(
            id=row["account_id"],
            name=row["a_name"],
            industry=row["a_industry"],
            employees=int(row["a_employees"]),
            annual_revenue=float(row["a_annual_revenue"]),
            country=row["a_country"],
            domain=row["a_domain"],
            crm_target_flag=bool(row["a_target_flag"]),
        )
    owner = Owner()
    if row["w_name"] is not None:
        owner = Owner(
            id=row["owner_id"],
            name=row["w_name"],
            email=row["w_email"],
            manager_id=row["w_manager_id"],
            team=row["w_team"],
        )
    facts = Facts("sandbox", opportunity, account, owner, products)
    comp = row["comp_eligible"]
    current = {
        "fit": row["fit"],
        "reason": row["reason"],
        "warning": row["warning"],
        "comp_eligible": None if comp is None else bool(comp),
    }
    return OpportunityRecord(facts, current, modified_at=row["last_modified"])


def task_state(row: sqlite3.Row) -> str:
    if row["deleted"]:
        return "deleted"
    return "completed" if row["status"] == "Completed" else "open"


def to_db(value: Any) -> Any:
    """Booleans as 0/1 and dates as ISO text, the way SQLite keeps them."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def insert_row(db: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    names = ", ".join(row)
    marks = ", ".join(f":{k}" for k in row)
    db.execute(f"INSERT OR REPLACE INTO {table} ({names}) VALUES ({marks})", row)


def replace_products(db: sqlite3.Connection, opportunity_id: str, products: Iterable) -> None:
    """Replace the line items; a product is a name or a (name, quantity, unit_price) tuple."""
    db.execute("DELETE FROM line_items WHERE opportunity_id = ?", (opportunity_id,))
    for item in products:
        name, quantity, price = (item, 1, 0.0) if isinstance(item, str) else item
        db.execute(
            "INSERT INTO line_items (opportunity_id, product, quantity, unit_price)"
            " VALUES (?, ?, ?, ?)",
            (opportunity_id, name, quantity, price),
        )
