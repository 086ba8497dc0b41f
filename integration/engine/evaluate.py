"""``evaluate(facts, ruleset) -> Decision``: the pure heart of the product.

Order matters and follows the contract: segments are computed first (each may
use the ones above it), then the first fit rule whose condition holds gives the
tag and reason, then warnings, coaching and compensation, which may all look at
``fit``. A condition that fails at run time (bad data the checks could not
foresee) counts as false and is recorded in ``Decision.errors``: one odd deal
never stops the others.

Fast path: the ruleset's conditions run as one CEL program over a context of
only the fields they read (:mod:`integration.engine.program`); an opportunity
whose run errs takes the step-by-step path, which records each error where it
happens, so the decision is the same either way. Coaching text is rendered
only when a task is claimed (:class:`CoachingTask` renders on first use).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from integration.domain.model import CoachingTask, Decision, Facts, Warning
from integration.engine.conditions import Condition
from integration.engine.program import Plan, plan_for
from integration.engine.ruleset import CoachingRule, FitRule, Ruleset, WarningRule
from integration.engine.templates import Template

log = logging.getLogger(__name__)
_BOOL = {bool}


class _Run:
    """The state of one evaluation: CEL context, template variables and errors so far."""

    def __init__(self, facts: Facts, plan: Plan, today: str) -> None:
        self.facts = facts
        self.plan = plan
        self.today = today
        self.context: Any = None
        self.scope: dict[str, Any] = {"today": today}  # and segment and fit, once known
        self.errors: list[str] = []
        self._variables: dict[str, Any] | None = None
        self._merged: dict[str, Any] | None = None  # with the scope, until it changes

    @property
    def variables(self) -> dict[str, Any]:
        """The template variables (every field), built on the first render and kept
        until the scope changes (one merge per phase, not one per rendered text)."""
        if self._merged is None:
            if self._variables is None:
                self._variables = self.facts.to_variables()
            self._merged = {**self._variables, **self.scope}
        return self._merged

    def holds(self, what: str, condition: Condition) -> bool:
        if self.context is None:
            self.context = self.plan.context(self.facts, self.today)
        try:
            return condition.holds(self.context)
        except Exception as exc:
            self.errors.append(f"{what}: {str(exc).split('. ')[0]}")
            return False

    def render(self, what: str, template: Template) -> str:
        try:
            return self.plan.texts.render(template, self.facts, self.scope, lambda: self.variables)
        except Exception as exc:
            self.errors.append(f"{what}: {exc}")
            return template.source

    def set(self, name: str, value: Any) -> None:
        self.scope[name] = value
        self._merged = None
        if self.context is not None:
            self.context.add_variable(name, value)


@dataclass(frozen=True)
class _Shape:
    """What the conditions' values decide, text apart: which segments hold, the fit
    rule, the warnings, coaching and compensation, and the rules fired. The same for
    every opportunity whose conditions give the same values, so the one-program path
    works it out once per set of values (:func:`_shape_of`)."""

    segments: dict[str, bool]
    fit_rule: FitRule | None
    warned: tuple[WarningRule, ...]
    coached: tuple[CoachingRule, ...]
    eligible: bool
    fired: tuple[str, ...]


MAX_SHAPES = 4096  # sets of condition values kept per ruleset (in practice a few dozen)


def evaluate(
    facts: Facts, ruleset: Ruleset, today: date | None = None, *, one_program: bool = True
) -> Decision:
    """Apply every rule of ``ruleset`` to ``facts`` on the evaluation date ``today``.

    ``today`` is a parameter (not read from a clock inside) so the same facts on
    the same day always give the same decision; callers pass their own clock.
    ``one_program=False`` takes the step-by-step path for every opportunity (the
    benchmark and the tests compare the two: the decisions must be the same).
    """
    plan = plan_for(ruleset)
    day = (today or date.today()).isoformat()
    values = _all_at_once(facts, plan, day) if one_program else None
    run = _Run(facts, plan, day)
    if values is None:
        segments, fit_index = _segments_and_fit(run, ruleset)
        reason = _reason(run, ruleset.fit[fit_index] if fit_index is not None else None)
        shape = _step_by_step(run, ruleset, segments, fit_index)
    else:
        shape = _shape_of(plan, ruleset, values)
        run.set("segment", shape.segments)
        reason = _reason(run, shape.fit_rule)
    fit_rule = shape.fit_rule
    warnings = tuple(
        Warning(rule.name, run.render(f"warning {rule.name}", rule.message))
        for rule in shape.warned
    )
    return Decision(
        crm=facts.crm,
        opportunity_id=facts.opportunity.id,
        fit=fit_rule.tag if fit_rule else "",
        reason=reason,
        fit_rule=fit_rule.name if fit_rule else "",
        warnings=warnings,
        coaching=tuple(_coaching(run, shape.coached)),
        comp_eligible=shape.eligible,
        fired=shape.fired,
        ruleset_version=ruleset.version,
        errors=tuple(run.errors),
        frozen=is_frozen(facts, ruleset.freeze_closed_before),
        counts_as=fit_rule.counts_as if fit_rule else "off",
    )


def _shape_of(plan: Plan, ruleset: Ruleset, values: list[bool]) -> _Shape:
    """The shape for the one program's values, made once per set of values."""
    key = tuple(values)
    shape = plan.shapes.get(key)
    if shape is None:
        count, fits = len(ruleset.segments), len(ruleset.fit)
        flags = values[count : count + fits]
        later = values[count + fits :]
        warns = len(ruleset.warnings)
        shape = _make_shape(
            ruleset,
            dict(zip(plan.segment_names, values, strict=False)),
            flags.index(True) if True in flags else None,
            later[:warns],
            later[warns:-1],
            later[-1],
        )
        if len(plan.shapes) >= MAX_SHAPES:
            plan.shapes.clear()
        plan.shapes[key] = shape
    return shape


def _make_shape(
    ruleset: Ruleset,
    segments: dict[str, bool],
    fit_index: int | None,
    warned: Sequence[bool],
    coached: Sequence[bool],
    eligible: bool,
) -> _Shape:
    fit_rule = ruleset.fit[fit_index] if fit_index is not None else None
    warnings = tuple(r for r, hit in zip(ruleset.warnings, warned, strict=True) if hit)
    coaching = tuple(r for r, hit in zip(ruleset.coaching, coached, strict=True) if hit)
    fired = (
        *(f"segment:{n}" for n, hit in segments.items() if hit),
        *([f"fit:{fit_rule.name}"] if fit_rule else []),
        *(f"warning:{r.name}" for r in warnings),
        *(f"coaching:{r.name}" for r in coaching),
        *(["compensation"] if eligible else []),
    )
    return _Shape(segments, fit_rule, warnings, coaching, eligible, fired)


def _reason(run: _Run, fit_rule: FitRule | None) -> str:
    """The fit rule's reason (rendered before ``fit`` is bound), then ``fit`` bound."""
    reason = run.render(f"fit {fit_rule.name} reason", fit_rule.reason) if fit_rule else ""
    run.set("fit", fit_rule.tag if fit_rule else "")
    return reason


def _step_by_step(
    run: _Run, ruleset: Ruleset, segments: dict[str, bool], fit_index: int | None
) -> _Shape:
    """The later conditions one by one, each error recorded where it happens (the path
    for odd data), after the segments and the fit (``fit`` bound by :func:`_reason`)."""
    warned = [run.holds(f"warning {r.name}", r.condition) for r in ruleset.warnings]
    coached = [run.holds(f"coaching {r.name}", r.condition) for r in ruleset.coaching]
    eligible = run.holds("compensation", ruleset.eligible_when)
    return _make_shape(ruleset, segments, fit_index, warned, coached, eligible)


def _all_at_once(facts: Facts, plan: Plan, today: str) -> list[bool] | None:
    """Every condition's value from the one program; ``None`` when any would be an error."""
    if plan.program is None:
        return None
    try:
        values = plan.program.execute(plan.program_context(facts, today))
    except Exception:
        return None
    if len(values) != plan.size or set(map(type, values)) != _BOOL:
        return None
    return values


def _segments_and_fit(run: _Run, ruleset: Ruleset) -> tuple[dict[str, bool], int | None]:
    """Step by step, each error recorded where it happens (the path for odd data)."""
    segments: dict[str, bool] = {}
    run.set("segment", segments)
    for name, condition in ruleset.segments:
        segments[name] = run.holds(f"segment {name}", condition)
        run.set("segment", dict(segments))
    fit_index = next(
        (i for i, r in enumerate(ruleset.fit) if run.holds(f"fit {r.name}", r.condition)), None
    )
    return segments, fit_index


def _coaching(run: _Run, rules: Sequence[CoachingRule]) -> list[CoachingTask]:
    variables = run.variables if rules else {}
    return [
        CoachingTask(
            rule=rule.name,
            due_in_days=rule.due_in_days,
            priority=rule.priority,
            assign_to=rule.assign_to,
            text=_text(rule.name, rule.subject, rule.body, variables),
        )
        for rule in rules
    ]


def _text(name: str, subject: Template, body: Template, variables: dict[str, Any]) -> Any:
    """Render the task's subject and body when first asked (a failure keeps the source)."""

    def render() -> tuple[str, str]:
        out = []
        for part, template in (("subject", subject), ("body", body)):
            try:
                out.append(template.render(variables))
            except Exception as exc:
                log.warning("coaching %s %s: %s", name, part, exc)
                out.append(template.source)
        return out[0], out[1]

    return render


def is_frozen(facts: Facts, freeze_closed_before: date | None) -> bool:
    """Closed before the freeze date: the deal's fields are never written again."""
    opportunity = facts.opportunity
    if not (freeze_closed_before and opportunity.is_closed and opportunity.close_date):
        return False
    try:
        return date.fromisoformat(opportunity.close_date[:10]) < freeze_closed_before
    except ValueError:
        return False
