"""The fields the service writes and reads, by logical name, per CRM.

Logical names (``fit``, ``reason``, ``warning``, ``comp_eligible``, ...) are used
everywhere inside the product; a :class:`FieldMap` turns them into one CRM's
field names, with the rule file's ``fields:`` overrides applied.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_FIELDS = {
    "salesforce": {
        "fit": "Strategy_Fit__c",
        "reason": "Strategy_Fit_Reason__c",
        "warning": "Strategy_Warning__c",
        "comp_eligible": "Comp_Eligible__c",
        "exception_reason": "Strategy_Exception_Reason__c",
        "account_target": "Target_Account__c",
    },
    "hubspot": {
        "fit": "strategy_fit",
        "reason": "strategy_fit_reason",
        "warning": "strategy_warning",
        "comp_eligible": "comp_eligible",
        "exception_reason": "strategy_exception_reason",
        "account_target": "hs_is_target_account",
    },
}
DEFAULT_FIELDS["sandbox"] = DEFAULT_FIELDS["hubspot"]


@dataclass(frozen=True)
class FieldMap:
    """Logical field name -> the CRM's field name, with the rule file's overrides."""

    names: dict[str, str]

    @classmethod
    def for_crm(cls, crm: str, overrides: dict[str, str] | None = None) -> FieldMap:
        return cls({**DEFAULT_FIELDS[crm], **(overrides or {})})

    def __getitem__(self, logical: str) -> str:
        return self.names[logical]


@dataclass(frozen=True)
class WatchedFields:
    """Which CRM fields matter to the rules, so a webhook can tell a change that counts.

    ``opportunity`` and ``account`` are the fields the rules read on each record;
    ``own`` are the service's output fields, whose changes only echo its writes.
    """

    opportunity: frozenset[str] = frozenset()
    account: frozenset[str] = frozenset()
    own: frozenset[str] = frozenset()
