"""SOQL for opportunities, and Salesforce records turned into :mod:`integration.domain.model`.

Queries are built with ``simple_salesforce.format_soql`` (quoting and escaping
done by the client library, never by string formatting of values). One query
reads everything a rule may need: the opportunity, its account and owner
through relationship fields, and the product names through a subquery on
``OpportunityLineItems``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from simple_salesforce import format_soql

from connectors.base import OpportunityQuery
from integration.domain.fields import FieldMap
from integration.domain.model import (
    OUTPUT_FIELDS,
    Account,
    Facts,
    Opportunity,
    OpportunityRecord,
    Owner,
)
from integration.domain.sfid import to18

#: Ids per ``IN (...)`` list: 200 ids keep a query near 5 KB, far under SOQL's
#: 100,000-character limit, and match the sObject Collections batch size.
IDS_PER_QUERY = 200
#: Account ids per sweep query. A SOQL statement may be 100,000 characters
#: (Salesforce "SOQL and SOSL Limits"); 2,000 quoted 18-character ids take about
#: 44,000, so one query (and its pages of 2,000 rows) covers far more accounts.
ACCOUNT_IDS_PER_QUERY = 2000

OPPORTUNITY_FIELDS = (
    "Id",
    "Name",
    "Amount",
    "StageName",
    "Probability",
    "CloseDate",
    "CreatedDate",
    "IsClosed",
    "IsWon",
    "Type",
    "LastModifiedDate",
)
ACCOUNT_FIELDS = (
    "Id",
    "Name",
    "Industry",
    "NumberOfEmployees",
    "AnnualRevenue",
    "BillingCountry",
    "Website",
)
OWNER_FIELDS = ("Id", "Name", "Email", "ManagerId", "Department")
PRODUCTS = "(SELECT Product2.Name FROM OpportunityLineItems)"


def select_clause(fields: FieldMap, multi_currency: bool = False) -> str:
    """``SELECT ... FROM Opportunity``; ``CurrencyIsoCode`` only exists in multi-currency orgs."""
    columns = list(OPPORTUNITY_FIELDS)
    if multi_currency:
        columns.append("CurrencyIsoCode")
    columns += [fields["exception_reason"], *(fields[name] for name in OUTPUT_FIELDS)]
    columns += [f"Account.{name}" for name in (*ACCOUNT_FIELDS, fields["account_target"])]
    columns += [f"Owner.{name}" for name in OWNER_FIELDS]
    columns.append(PRODUCTS)
    return f"SELECT {', '.join(columns)} FROM Opportunity"


def by_ids(select: str, ids: Sequence[str]) -> str:
    """One query for up to :data:`IDS_PER_QUERY` opportunities."""
    return select + format_soql(" WHERE Id IN {ids}", ids=[to18(i) for i in ids])


def matching(select: str, query: OpportunityQuery, account_ids: Sequence[str] = ()) -> str:
    """A sweep query: every criterion of ``query`` ANDed, ordered by Id for stable paging."""
    where = [
        *_accounts(account_ids),
        *_since(query.modified_since),
        *_open(query.open_only, query.closed_after),
    ]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"{select}{clause} ORDER BY Id"


def _accounts(account_ids: Sequence[str]) -> list[str]:
    if not account_ids:
        return []
    return [format_soql("AccountId IN {ids}", ids=[to18(i) for i in account_ids])]


def _since(modified_since: str | None) -> list[str]:
    if not modified_since:
        return []
    when = datetime.fromisoformat(modified_since.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"modified_since needs a time zone; got {modified_since!r}")
    return [format_soql("LastModifiedDate >= {when}", when=when)]


def _open(open_only: bool, closed_after: date | None) -> list[str]:
    if not open_only:
        return []
    if closed_after is None:
        return ["IsClosed = false"]
    return [format_soql("(IsClosed = false OR CloseDate >= {day})", day=closed_after)]


def task_states_query(task_ids: Sequence[str]) -> str:
    """Run with ``queryAll`` so deleted tasks (``IsDeleted``) are still seen."""
    return format_soql(
        "SELECT Id, IsClosed, IsDeleted, Status FROM Task WHERE Id IN {ids}",
        ids=[to18(i) for i in task_ids],
    )


def tasks_on_query(opportunity_ids: Sequence[str]) -> str:
    """The tasks of these opportunities, to find one the service created by its marker."""
    return format_soql(
        "SELECT Id, WhatId, Description FROM Task WHERE WhatId IN {ids}",
        ids=[to18(i) for i in opportunity_ids],
    )


def task_descriptions_query(task_ids: Sequence[str]) -> str:
    """Descriptions to append a closing comment to."""
    return format_soql(
        "SELECT Id, Description FROM Task WHERE Id IN {ids}", ids=[to18(i) for i in task_ids]
    )


def to_record(row: dict[str, Any], fields: FieldMap, org_currency: str = "") -> OpportunityRecord:
    """One query row as facts + current output values, every missing value null-safe."""
    facts = Facts(
        crm="salesforce",
        opportunity=_opportunity(row, fields, org_currency),
        account=_account(row.get("Account") or {}, fields),
        owner=_owner(row.get("Owner") or {}),
        products=_products(row.get("OpportunityLineItems")),
    )
    current = {name: row.get(fields[name]) for name in OUTPUT_FIELDS}
    return OpportunityRecord(facts, current, _text(row.get("LastModifiedDate")))


def _opportunity(row: dict[str, Any], fields: FieldMap, org_currency: str) -> Opportunity:
    return Opportunity(
        id=to18(_text(row.get("Id"))),
        name=_text(row.get("Name")),
        amount=_number(row.get("Amount")),
        currency=_text(row.get("CurrencyIsoCode")) or org_currency,
        stage=_text(row.get("StageName")),
        probability=int(_number(row.get("Probability"))),
        close_date=_text(row.get("CloseDate")),
        created_date=_text(row.get("CreatedDate"))[:10],
        is_closed=bool(row.get("IsClosed")),
        is_won=bool(row.get("IsWon")),
        type=_text(row.get("Type")),
        exception_reason=_text(row.get(fields["exception_reason"])),
    )


def _account(raw: dict[str, Any], fields: FieldMap) -> Account:
    return Account(
        id=to18(_text(raw.get("Id"))),
        name=_text(raw.get("Name")),
        industry=_text(raw.get("Industry")),
        employees=int(_number(raw.get("NumberOfEmployees"))),
        annual_revenue=_number(raw.get("AnnualRevenue")),
        country=_text(raw.get("BillingCountry")),
        domain=_text(raw.get("Website")),
        crm_target_flag=bool(raw.get(fields["account_target"])),
    )


def _owner(raw: dict[str, Any]) -> Owner:
    return Owner(
        id=to18(_text(raw.get("Id"))),
        name=_text(raw.get("Name")),
        email=_text(raw.get("Email")),
        manager_id=to18(_text(raw.get("ManagerId"))),
        team=_text(raw.get("Department")),
    )


def _products(sub: dict[str, Any] | None) -> tuple[str, ...]:
    """Product names from the subquery (``null`` when the opportunity has none)."""
    rows = (sub or {}).get("records") or []
    names = (_text((line.get("Product2") or {}).get("Name")) for line in rows)
    return tuple(name for name in names if name)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _number(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0
