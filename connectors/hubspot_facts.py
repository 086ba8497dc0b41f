"""Turn HubSpot's JSON (every property value a string, absent when unset) into facts.

Pure functions, no I/O: the connector fetches deals, companies, line items,
owners, pipelines and the industry options, and these build the null-safe
:class:`integration.domain.model.Facts` the rules see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from integration.domain.fields import FieldMap
from integration.domain.model import Account, Facts, Opportunity, OpportunityRecord, Owner

DEAL_PROPERTIES = (
    "dealname",
    "amount",
    "deal_currency_code",
    "dealstage",
    "pipeline",
    "hs_deal_stage_probability",
    "closedate",
    "createdate",
    "hs_is_closed",
    "hs_is_closed_won",
    "dealtype",
    "hubspot_owner_id",
    "hs_lastmodifieddate",
    "hs_object_id",
)
COMPANY_PROPERTIES = ("name", "industry", "numberofemployees", "annualrevenue", "country", "domain")
DEAL_FIELDS = ("fit", "reason", "warning", "comp_eligible", "exception_reason")
CURRENT_FIELDS = ("fit", "reason", "warning", "comp_eligible")
PRIMARY_COMPANY_TYPE_ID = 5  # HUBSPOT_DEFINED "Primary" deal-to-company association
PRIMARY_DEAL_TYPE_ID = 6  # its inverse: HUBSPOT_DEFINED "Primary" company-to-deal


@dataclass(frozen=True)
class Stage:
    label: str
    probability: int | None  # 0-100 from stage metadata, None when the stage has none


@dataclass
class Lookups:
    """Everything besides the deal itself that facts are built from, keyed by id."""

    stages: dict[str, Stage] = field(default_factory=dict)
    owners: dict[str, Owner] = field(default_factory=dict)
    industries: dict[str, str] = field(default_factory=dict)  # option value -> label
    companies: dict[str, dict[str, str]] = field(default_factory=dict)
    deal_company: dict[str, str] = field(default_factory=dict)
    line_items: dict[str, dict[str, str]] = field(default_factory=dict)
    deal_line_items: dict[str, list[str]] = field(default_factory=dict)


def deal_properties(fields: FieldMap) -> list[str]:
    return [*DEAL_PROPERTIES, *(fields[name] for name in DEAL_FIELDS)]


def company_properties(fields: FieldMap) -> list[str]:
    return [*COMPANY_PROPERTIES, fields["account_target"]]


def record(deal: dict[str, Any], lookups: Lookups, fields: FieldMap) -> OpportunityRecord:
    """One deal's facts and current output values."""
    deal_id = str(deal["id"])
    props = deal.get("properties") or {}
    company_id = lookups.deal_company.get(deal_id, "")
    facts = Facts(
        crm="hubspot",
        opportunity=opportunity(deal_id, props, lookups, fields),
        account=account(company_id, lookups.companies.get(company_id), lookups, fields),
        owner=lookups.owners.get(props.get("hubspot_owner_id") or "", _owner(props)),
        products=tuple(
            text(lookups.line_items[item_id].get("properties") or {}, "name")
            for item_id in lookups.deal_line_items.get(deal_id, [])
            if item_id in lookups.line_items
        ),
    )
    return OpportunityRecord(
        facts=facts,
        current=current_values(props, fields),
        modified_at=text(props, "hs_lastmodifieddate"),
    )


def opportunity(
    deal_id: str, props: dict[str, Any], lookups: Lookups, fields: FieldMap
) -> Opportunity:
    stage = lookups.stages.get(text(props, "dealstage"))
    return Opportunity(
        id=deal_id,
        name=text(props, "dealname"),
        amount=number(props, "amount"),
        currency=text(props, "deal_currency_code"),
        stage=stage.label if stage else text(props, "dealstage"),
        probability=probability(props, stage),
        close_date=utc_date(text(props, "closedate")),
        created_date=utc_date(text(props, "createdate")),
        is_closed=flag(props, "hs_is_closed"),
        is_won=flag(props, "hs_is_closed_won"),
        type=text(props, "dealtype"),
        exception_reason=text(props, fields["exception_reason"]),
    )


def account(
    company_id: str, company: dict[str, Any] | None, lookups: Lookups, fields: FieldMap
) -> Account:
    if not company:
        return Account(id=company_id)
    props = company.get("properties") or {}
    industry = text(props, "industry")
    return Account(
        id=company_id,
        name=text(props, "name"),
        industry=lookups.industries.get(industry, industry),
        employees=int(number(props, "numberofemployees")),
        annual_revenue=number(props, "annualrevenue"),
        country=text(props, "country"),
        domain=text(props, "domain"),
        crm_target_flag=flag(props, fields["account_target"]),
    )


def owner(data: dict[str, Any]) -> Owner:
    """An owner from the owners API: first + last name, primary team as ``team``."""
    teams = data.get("teams") or []
    primary = next((t for t in teams if t.get("primary")), teams[0] if teams else {})
    name = " ".join(p for p in (data.get("firstName"), data.get("lastName")) if p)
    return Owner(
        id=str(data.get("id") or ""),
        name=name,
        email=data.get("email") or "",
        team=primary.get("name") or "",
    )


def stage(data: dict[str, Any]) -> Stage:
    """A pipeline stage; metadata ``probability`` is a string fraction such as ``"0.2"``."""
    raw = (data.get("metadata") or {}).get("probability")
    return Stage(label=data.get("label") or "", probability=_percent(raw))


def current_values(props: dict[str, Any], fields: FieldMap) -> dict[str, Any]:
    """Output fields as the CRM holds them; empty and absent both become None."""
    values: dict[str, Any] = {}
    for name in CURRENT_FIELDS:
        raw = props.get(fields[name])
        if raw in (None, ""):
            values[name] = None
        elif name == "comp_eligible":
            values[name] = str(raw).lower() == "true"
        else:
            values[name] = raw
    return values


def probability(props: dict[str, Any], stage: Stage | None) -> int:
    own = _percent(props.get("hs_deal_stage_probability"))
    if own is not None:
        return own
    return stage.probability if stage and stage.probability is not None else 0


def primary_company(targets: list[dict[str, Any]]) -> str:
    """The primary company among a deal's associations, else the lowest id."""
    for target in targets:
        for kind in target.get("associationTypes") or []:
            if kind.get("typeId") == PRIMARY_COMPANY_TYPE_ID or kind.get("label") == "Primary":
                return str(target["toObjectId"])
    ids = sorted((str(t["toObjectId"]) for t in targets), key=lambda i: (len(i), i))
    return ids[0] if ids else ""


def primary_deals(by_company: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """Deal id -> company id, where the company-to-deal association is the Primary one."""
    found = {}
    for company_id, targets in by_company.items():
        for target in targets:
            for kind in target.get("associationTypes") or []:
                if kind.get("typeId") == PRIMARY_DEAL_TYPE_ID or kind.get("label") == "Primary":
                    found[str(target["toObjectId"])] = str(company_id)
    return found


def utc_date(raw: str) -> str:
    """``YYYY-MM-DD`` in UTC from an ISO datetime, a date or epoch milliseconds."""
    if not raw:
        return ""
    try:
        if raw.isdigit():
            moment = datetime.fromtimestamp(int(raw) / 1000, tz=UTC)
        else:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date().isoformat()


def text(props: dict[str, Any], name: str) -> str:
    value = props.get(name)
    return "" if value is None else str(value)


def number(props: dict[str, Any], name: str) -> float:
    try:
        return float(props.get(name) or 0)
    except (TypeError, ValueError):
        return 0.0


def flag(props: dict[str, Any], name: str) -> bool:
    return str(props.get(name) or "").lower() == "true"


def _percent(raw: Any) -> int | None:
    try:
        return round(float(raw) * 100) if raw not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _owner(props: dict[str, Any]) -> Owner:
    return Owner(id=text(props, "hubspot_owner_id"))
