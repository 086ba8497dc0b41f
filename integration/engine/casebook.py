"""The admin's own rule tests (``rules/tests/*.yaml``): expected vs actual.

Each case describes an opportunity in the variables' own words and what the
rules must decide. ``expect`` may omit what it does not check; ``warnings`` and
``coaching`` list rule *names*. ``account.on_target_list`` is taken as given, so
a case does not depend on today's target list.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any

from integration.domain.model import Account, Decision, Facts, Opportunity, Owner
from integration.engine.evaluate import evaluate
from integration.engine.ruleset import Ruleset
from integration.engine.yamlsource import LocatedDict, Problem, load

EXPECT_KEYS = ("fit", "reason", "comp_eligible", "warnings", "coaching", "frozen")
CASE_KEYS = ("name", "opportunity", "account", "owner", "products", "crm", "today", "expect")


@dataclass(frozen=True)
class CaseResult:
    file: str
    line: int
    name: str
    mismatches: tuple[tuple[str, Any, Any], ...]  # (key, expected, actual)
    errors: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.mismatches and not self.errors


def run_tests(ruleset: Ruleset, directory: str | Path) -> tuple[list[CaseResult], list[Problem]]:
    """Every case of every ``DIR/tests/*.yaml`` file, and problems with the files themselves."""
    results: list[CaseResult] = []
    problems: list[Problem] = []
    for path in sorted(Path(directory, "tests").glob("*.y*ml")):
        document, file_problems = load(path.read_text(encoding="utf-8"), str(path))
        problems.extend(file_problems)
        if not isinstance(document, list):
            if not file_problems:
                problems.append(Problem(str(path), 1, "a test file must be a list of cases"))
            continue
        for index, case in enumerate(document):
            line = document.lines[index] if hasattr(document, "lines") else 1
            result = _run_case(ruleset, case, str(path), line, problems)
            if result:
                results.append(result)
    return results, problems


def _run_case(
    ruleset: Ruleset, case: Any, file: str, line: int, problems: list[Problem]
) -> CaseResult | None:
    if not isinstance(case, LocatedDict) or not isinstance(case.get("expect"), dict):
        problems.append(Problem(file, line, "a case needs a name and an expect: mapping"))
        return None
    unknown = [k for k in case if k not in CASE_KEYS] + [
        f"expect.{k}" for k in case["expect"] if k not in EXPECT_KEYS
    ]
    if unknown:
        problems.append(Problem(file, line, f"unknown key(s) {', '.join(unknown)}"))
        return None
    try:
        facts = case_facts(case)
        today = _today(case.get("today"))
    except (TypeError, ValueError) as exc:
        problems.append(Problem(file, line, f"case {case.get('name')!r}: {exc}"))
        return None
    decision = evaluate(facts, ruleset, today)
    mismatches = tuple(
        (key, expected, actual(decision, key))
        for key, expected in case["expect"].items()
        if not _equal(expected, actual(decision, key))
    )
    return CaseResult(
        file, line, str(case.get("name", f"case at line {line}")), mismatches, decision.errors
    )


def _today(value: Any) -> date | None:
    """A case may fix the evaluation date (``today: 2026-11-30``) so it never goes stale."""
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"today must be a date like 2026-11-30; got {value!r}") from None


def _coerce(default: Any, value: Any, name: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false; got {value!r}")
        return value
    if isinstance(default, int | float) and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        raise ValueError(f"{name} must be a number; got {value!r}")
    return type(default)(value)


def _build(cls: type, values: Any, what: str) -> Any:
    """An ``Opportunity``/``Account``/``Owner`` from a case, typed like the CRM would give it."""
    template = cls(id="")
    given = dict(values or {})
    known = {f.name for f in fields(cls)} - {"crm_target_flag"}
    unknown = [k for k in given if k not in known]
    if unknown:
        raise ValueError(f"unknown {what} field(s): {', '.join(map(str, unknown))}")
    typed = {k: _coerce(getattr(template, k), v, f"{what}.{k}") for k, v in given.items()}
    return cls(**{"id": "TEST" if cls is Opportunity else "", **typed})


def case_facts(case: dict) -> Facts:
    """A case's opportunity as :class:`Facts`, missing values at their defaults."""
    return Facts(
        crm=str(case.get("crm", "sandbox")),
        opportunity=_build(Opportunity, case.get("opportunity"), "opportunity"),
        account=_build(Account, case.get("account"), "account"),
        owner=_build(Owner, case.get("owner"), "owner"),
        products=tuple(str(p) for p in case.get("products") or ()),
    )


def actual(decision: Decision, key: str) -> Any:
    if key == "warnings":
        return [w.rule for w in decision.warnings]
    if key == "coaching":
        return [t.rule for t in decision.coaching]
    return getattr(decision, key)


def _equal(expected: Any, got: Any) -> bool:
    if isinstance(expected, list) and isinstance(got, list):
        return sorted(map(str, expected)) == sorted(map(str, got))
    return expected == got
