"""The normalized facts about one opportunity and the decision taken on it.

Every CRM connector turns its own records into :class:`Facts`; the rule engine
turns facts into a :class:`Decision`; the planner compares the decision with the
values the CRM holds now (:class:`OpportunityRecord.current`). Nothing here does
I/O, so the whole core can be tested without a CRM, Redis or a database.

Missing CRM values become null-safe defaults (``""``, ``0``, ``False``, ``()``)
so a rule never sees ``None`` (contract: "missing CRM values are null-safe").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from typing import Any

#: Logical names of the fields the service writes, in the order they are planned.
OUTPUT_FIELDS: tuple[str, ...] = ("fit", "reason", "warning", "comp_eligible")

#: Longest text each output field holds (Salesforce Text(255) and LongTextArea(4000));
#: longer text is cut with an ellipsis rather than rejected by the CRM.
FIELD_LIMITS = {"fit": 255, "reason": 255, "warning": 4000}


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


@dataclass(frozen=True)
class Opportunity:
    """An opportunity (Salesforce) or deal (HubSpot)."""

    id: str
    name: str = ""
    amount: float = 0.0
    currency: str = ""
    stage: str = ""
    probability: int = 0
    close_date: str = ""  # YYYY-MM-DD, "" when unknown
    created_date: str = ""  # YYYY-MM-DD, "" when unknown
    is_closed: bool = False
    is_won: bool = False
    type: str = ""
    exception_reason: str = ""


@dataclass(frozen=True)
class Account:
    """The opportunity's account (HubSpot: the deal's primary company).

    ``crm_target_flag`` is the CRM's own target-account field as read; the rules
    see ``on_target_list``, which :func:`integration.engine.targets.resolve` computes
    from that flag and the target list file.
    """

    id: str = ""
    name: str = ""
    industry: str = ""
    employees: int = 0
    annual_revenue: float = 0.0
    country: str = ""
    domain: str = ""
    on_target_list: bool = False
    crm_target_flag: bool = False


@dataclass(frozen=True)
class Owner:
    """The rep who owns the opportunity."""

    id: str = ""
    name: str = ""
    email: str = ""
    manager_id: str = ""
    team: str = ""


@dataclass(frozen=True)
class Facts:
    """Everything a rule may look at for one opportunity."""

    crm: str
    opportunity: Opportunity
    account: Account = field(default_factory=Account)
    owner: Owner = field(default_factory=Owner)
    products: tuple[str, ...] = ()

    def to_variables(self) -> dict[str, Any]:
        """The CEL/Jinja variables: plain dicts and lists, internals removed.

        The records hold only scalars, so a copy of each one's attributes is the
        same as ``asdict`` at a tenth of its cost (this runs for every evaluation).
        """
        account = dict(vars(self.account))
        account.pop("crm_target_flag")
        return {
            "opportunity": dict(vars(self.opportunity)),
            "account": account,
            "owner": dict(vars(self.owner)),
            "products": list(self.products),
            "crm": self.crm,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready) that :meth:`from_dict` turns back into the same facts."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Facts:
        """Facts from :meth:`to_dict`'s output; unknown keys (a newer writer) are ignored."""
        return cls(
            crm=data["crm"],
            opportunity=_known(Opportunity, data["opportunity"]),
            account=_known(Account, data.get("account") or {}),
            owner=_known(Owner, data.get("owner") or {}),
            products=tuple(data.get("products") or ()),
        )

    def with_account(self, **changes: Any) -> Facts:
        return replace(self, account=replace(self.account, **changes))

    def with_owner(self, **changes: Any) -> Facts:
        return replace(self, owner=replace(self.owner, **changes))


_FIELD_NAMES: dict[type, frozenset[str]] = {}


def _known(kind: type, data: dict[str, Any]) -> Any:
    try:
        return kind(**data)  # the usual case: written by this version
    except TypeError:
        pass  # a key this version does not know (a newer writer): leave it out
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = frozenset(f.name for f in fields(kind))
    return kind(**{key: value for key, value in data.items() if key in names})


@dataclass(frozen=True)
class OpportunityRecord:
    """What a connector reads: the facts plus the current output-field values.

    ``current`` is keyed by the logical names in :data:`OUTPUT_FIELDS`; a field
    the CRM has no value for is absent or ``None``.
    """

    facts: Facts
    current: dict[str, Any] = field(default_factory=dict)
    modified_at: str = ""  # ISO timestamp of the CRM's last modification

    @property
    def id(self) -> str:
        return self.facts.opportunity.id


@dataclass(frozen=True)
class Warning:
    rule: str
    message: str


@dataclass(frozen=True)
class CoachingTask:
    """A coaching task a rule asks for; the planner decides whether to create it.

    Its text is rendered on first use (``subject``, ``body``) by ``text``: most
    evaluations find the task already live and never need it, and rendering two
    templates costs more than deciding the whole opportunity.
    """

    rule: str
    due_in_days: int
    priority: str
    assign_to: str  # "manager" or "owner"
    text: Callable[[], tuple[str, str]] = field(default=lambda: ("", ""), compare=False, repr=False)

    @cached_property
    def _rendered(self) -> tuple[str, str]:
        return self.text()

    @property
    def subject(self) -> str:
        return self._rendered[0]

    @property
    def body(self) -> str:
        return self._rendered[1]


@dataclass(frozen=True)
class Decision:
    """The outcome of evaluating one opportunity under one ruleset."""

    crm: str
    opportunity_id: str
    fit: str
    reason: str
    fit_rule: str
    warnings: tuple[Warning, ...] = ()
    coaching: tuple[CoachingTask, ...] = ()
    comp_eligible: bool = False
    fired: tuple[str, ...] = ()
    ruleset_version: str = ""
    errors: tuple[str, ...] = ()
    frozen: bool = False
    counts_as: str = "off"  # how the fit rule counts: on | approved | off

    @property
    def warning_text(self) -> str:
        """All warning messages as the one line reps see (empty when none)."""
        return " | ".join(w.message for w in self.warnings)

    def desired(self) -> dict[str, Any]:
        """The output-field values this decision asks the CRM to hold."""
        return {
            "fit": clip(self.fit, FIELD_LIMITS["fit"]),
            "reason": clip(self.reason, FIELD_LIMITS["reason"]),
            "warning": clip(self.warning_text, FIELD_LIMITS["warning"]),
            "comp_eligible": self.comp_eligible,
        }
