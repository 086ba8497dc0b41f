"""A decision with its context, as the store records it.

:class:`DecisionEntry` turns one decision, the facts it was taken on and the
changes planned for it into the rows of the audit trail (``decisions``,
``writes``) and the opportunity's current state (``opportunity_state``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from integration.domain.model import Decision, Facts
from integration.store.models import DecisionRow, StateRow, WriteRow


def utcnow() -> datetime:
    return datetime.now(UTC)


class DecisionEntry:
    """A decision with its context, ready to be recorded."""

    def __init__(
        self,
        decision: Decision,
        facts: Facts,
        changes: dict[str, tuple[Any, Any]],
        *,
        trigger: str,
        event_key: str = "",
        target_list_version: str = "",
        write_error: str = "",
        reported: dict[str, Any] | None = None,
        raw_facts: Facts | None = None,
        held: dict[str, Any] | None = None,
    ) -> None:
        self.decision, self.facts, self.changes = decision, facts, changes
        self.raw_facts = raw_facts or facts
        self.held = held if held is not None else decision.desired()
        self.trigger, self.event_key = trigger, event_key
        self.target_list_version, self.write_error = target_list_version, write_error
        self.reported = reported or decision.desired()

    def row(self) -> DecisionRow:
        d, o, a, w = self.decision, self.facts.opportunity, self.facts.account, self.facts.owner
        return DecisionRow(
            crm=d.crm,
            opportunity_id=d.opportunity_id,
            decided_at=utcnow(),
            trigger=self.trigger,
            event_key=self.event_key[:200],
            fit=self.reported["fit"],
            reason=self.reported["reason"],
            fit_rule=d.fit_rule,
            warning=self.reported["warning"] or "",
            comp_eligible=bool(self.reported["comp_eligible"]),
            fired=json.dumps(list(d.fired)),
            errors=json.dumps(list(d.errors)),
            ruleset_version=d.ruleset_version,
            target_list_version=self.target_list_version,
            frozen=d.frozen,
            name=o.name[:255],
            amount=o.amount,
            stage=o.stage,
            probability=o.probability,
            close_date=o.close_date,
            is_closed=o.is_closed,
            is_won=o.is_won,
            account_id=a.id,
            account_name=a.name[:255],
            on_target_list=a.on_target_list,
            owner_id=w.id,
            owner_name=w.name[:255],
            team=w.team[:255],
            manager_id=w.manager_id,
            changed=bool(self.changes),
        )

    def state_row(self, decided_at: datetime) -> StateRow:
        """The opportunity's current state after this decision."""
        d, o, a, w = self.decision, self.facts.opportunity, self.facts.account, self.facts.owner
        return StateRow(
            crm=d.crm,
            opportunity_id=d.opportunity_id,
            facts=json.dumps(self.raw_facts.to_dict()),
            crm_values=json.dumps(self.held),
            fit=d.fit[:255],
            fit_rule=d.fit_rule[:200],
            reason=d.reason,
            warning=d.warning_text,
            warnings=json.dumps([warning.rule for warning in d.warnings]),
            coaching=json.dumps([task.rule for task in d.coaching]),
            comp_eligible=d.comp_eligible,
            frozen=d.frozen,
            ruleset_version=d.ruleset_version,
            target_list_version=self.target_list_version,
            name=o.name[:255],
            amount=o.amount,
            stage=o.stage[:100],
            probability=o.probability,
            close_date=o.close_date,
            created_date=o.created_date,
            is_closed=o.is_closed,
            is_won=o.is_won,
            account_id=a.id,
            account_name=a.name[:255],
            industry=a.industry[:255],
            on_target_list=a.on_target_list,
            owner_id=w.id,
            owner_name=w.name[:255],
            team=w.team[:255],
            manager_id=w.manager_id[:255],
            decided_at=decided_at,
        )

    def write_rows(self, decision_id: int, pending: bool = False) -> Iterator[WriteRow]:
        now = utcnow()
        for name, (old, new) in self.changes.items():
            yield WriteRow(
                decision_id=decision_id,
                crm=self.decision.crm,
                opportunity_id=self.decision.opportunity_id,
                field=name,
                old_value=_text(old),
                new_value=_text(new),
                status="failed" if self.write_error else ("pending" if pending else "ok"),
                error=self.write_error,
                at=now,
            )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
