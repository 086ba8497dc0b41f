"""The variables rules may use, with their types, as the contract lists them.

The declaration serves two purposes: ``rules check`` rejects an expression that
names a variable or field not declared here (``acount.industry``,
``opportunity.amout``) at check time, and it evaluates every expression against
typed samples so that comparing a number with a string is caught before a
deal ever reaches the rule.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from integration.domain.model import Account, Facts, Opportunity, Owner

#: Root name -> field name -> type name ("string", "int", "double", "bool").
RECORD_FIELDS: dict[str, dict[str, str]] = {
    "opportunity": {
        "id": "string",
        "name": "string",
        "amount": "double",
        "currency": "string",
        "stage": "string",
        "probability": "int",
        "close_date": "string",
        "created_date": "string",
        "is_closed": "bool",
        "is_won": "bool",
        "type": "string",
        "exception_reason": "string",
    },
    "account": {
        "id": "string",
        "name": "string",
        "industry": "string",
        "employees": "int",
        "annual_revenue": "double",
        "country": "string",
        "domain": "string",
        "on_target_list": "bool",
    },
    "owner": {
        "id": "string",
        "name": "string",
        "email": "string",
        "manager_id": "string",
        "team": "string",
    },
}

#: Plain variables (not records).
SCALARS: dict[str, str] = {"products": "list(string)", "crm": "string", "today": "string"}

#: Where ``fit`` may be used (it is decided by the fit rules themselves).
SECTIONS_WITH_FIT = ("warnings", "coaching", "compensation")

#: Macros whose first argument binds a new name inside the expression.
BINDING_MACROS = ("exists", "all", "exists_one", "map", "filter")


def _check_model_matches() -> None:
    """The declaration and the model must agree, or rules would see other fields."""
    for root, cls in (("opportunity", Opportunity), ("account", Account), ("owner", Owner)):
        model = {f.name for f in fields(cls)} - {"crm_target_flag"}
        assert model == set(RECORD_FIELDS[root]), (root, model ^ set(RECORD_FIELDS[root]))


_check_model_matches()


def default_variables(crm: str = "sandbox") -> dict[str, Any]:
    """Variables for an opportunity the CRM knows nothing about: all defaults."""
    return dict(Facts(crm=crm, opportunity=Opportunity(id="")).to_variables(), today="2026-12-01")


def sample_variables() -> dict[str, Any]:
    """Variables with every field filled, for type-checking expressions and templates."""
    return Facts(
        crm="sandbox",
        opportunity=Opportunity(
            id="OPP-1",
            name="Acme - Data Platform",
            amount=250000.0,
            currency="USD",
            stage="Negotiation",
            probability=80,
            close_date="2026-12-15",
            created_date="2026-06-01",
            is_closed=False,
            is_won=False,
            type="New Business",
            exception_reason="Longer-term opportunity",
        ),
        account=Account(
            id="ACC-1",
            name="Acme Manufacturing",
            industry="Manufacturing",
            employees=5000,
            annual_revenue=1.2e9,
            country="United States",
            domain="acme.example",
            on_target_list=True,
        ),
        owner=Owner(id="U-1", name="Dana Reyes", email="dana@example.com", manager_id="U-9"),
        products=("Data Platform",),
    ).to_variables() | {"today": "2026-12-01"}
