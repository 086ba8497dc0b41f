"""``evaluate(facts, ruleset) -> Decision``: the pure heart of the product.

Order matters and follows the contract: segments are computed first (each may
use the ones above it), then the first fit rule whose condition holds gives the
tag and reason, then warnings, coaching and compensation, which may all look at
``fit``. A condition that fails at run time (bad data the checks could not
foresee) counts as false and is recorded in ``Decision.errors``: one odd deal
never stops the others.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import cel

from integration.domain.model import CoachingTask, Decision, Facts, Warning
from integration.engine.conditions import Condition
from integration.engine.ruleset import Ruleset
from integration.engine.templates import Template


class _Run:
    """The state of one evaluation: variables, CEL context and errors so far."""

    def __init__(self, facts: Facts) -> None:
        self.variables: dict[str, Any] = facts.to_variables()
        self.context = cel.Context(self.variables)
        self.errors: list[str] = []

    def holds(self, what: str, condition: Condition) -> bool:
        try:
            return condition.holds(self.context)
        except Exception as exc:
            self.errors.append(f"{what}: {str(exc).split('. ')[0]}")
            return False

    def render(self, what: str, template: Template) -> str:
        try:
            return template.render(self.variables)
        except Exception as exc:
            self.errors.append(f"{what}: {exc}")
            return template.source

    def set(self, name: str, value: Any) -> None:
        self.variables[name] = value
        self.context.add_variable(name, value)


def evaluate(facts: Facts, ruleset: Ruleset) -> Decision:
    """Apply every rule of ``ruleset`` to ``facts``."""
    run = _Run(facts)
    segments: dict[str, bool] = {}
    run.set("segment", segments)
    for name, condition in ruleset.segments:
        segments[name] = run.holds(f"segment {name}", condition)
        run.set("segment", dict(segments))
    fit_rule = next((r for r in ruleset.fit if run.holds(f"fit {r.name}", r.condition)), None)
    fit = fit_rule.tag if fit_rule else ""
    reason = run.render(f"fit {fit_rule.name} reason", fit_rule.reason) if fit_rule else ""
    run.set("fit", fit)
    warnings = tuple(
        Warning(rule.name, run.render(f"warning {rule.name}", rule.message))
        for rule in ruleset.warnings
        if run.holds(f"warning {rule.name}", rule.condition)
    )
    coaching = tuple(_coaching(run, ruleset))
    eligible = run.holds("compensation", ruleset.eligible_when)
    fired = (
        *(f"segment:{n}" for n, held in segments.items() if held),
        *([f"fit:{fit_rule.name}"] if fit_rule else []),
        *(f"warning:{w.rule}" for w in warnings),
        *(f"coaching:{t.rule}" for t in coaching),
        *(["compensation"] if eligible else []),
    )
    return Decision(
        crm=facts.crm,
        opportunity_id=facts.opportunity.id,
        fit=fit,
        reason=reason,
        fit_rule=fit_rule.name if fit_rule else "",
        warnings=warnings,
        coaching=coaching,
        comp_eligible=eligible,
        fired=fired,
        ruleset_version=ruleset.version,
        errors=tuple(run.errors),
        frozen=is_frozen(facts, ruleset.freeze_closed_before),
    )


def _coaching(run: _Run, ruleset: Ruleset) -> list[CoachingTask]:
    tasks = []
    for rule in ruleset.coaching:
        if run.holds(f"coaching {rule.name}", rule.condition):
            tasks.append(
                CoachingTask(
                    rule=rule.name,
                    subject=run.render(f"coaching {rule.name} subject", rule.subject),
                    body=run.render(f"coaching {rule.name} body", rule.body),
                    due_in_days=rule.due_in_days,
                    priority=rule.priority,
                    assign_to=rule.assign_to,
                )
            )
    return tasks


def is_frozen(facts: Facts, freeze_closed_before: date | None) -> bool:
    """Closed before the freeze date: the deal's fields are never written again."""
    opportunity = facts.opportunity
    if not (freeze_closed_before and opportunity.is_closed and opportunity.close_date):
        return False
    try:
        return date.fromisoformat(opportunity.close_date[:10]) < freeze_closed_before
    except ValueError:
        return False
