"""``evaluate()`` on the real path, next to the plain-Python floor and a JSON-logic engine.

``python bench/evaluate.py [--samples N] [--rounds R]``

Every engine decides the same shipped rules (``rules/strategy.yaml``) for the same
seeded opportunities (``connectors.sandbox_seed``, target list applied):

- ``evaluate(facts, ruleset)`` exactly as the pipeline calls it (one CEL program
  per ruleset, reason and warning text rendered, coaching text left for the
  tasks that are claimed);
- the same function on its step-by-step path (``one_program=False``: one CEL
  program per condition, ``segment`` re-bound after each segment), the path an
  opportunity takes when the one program errs;
- the plain-Python floor: the rules hand-written against the ``Facts`` objects
  (no text, nothing converted);
- ``panzi-json-logic`` with the rules written in JSON logic, on the variables dict.

Rounds alternate the engines so a busy machine slows them alike; each figure is
the best round, in CPU time of this process (``time.process_time``), so time the
machine spends on other work is not counted. Before timing, it asserts that the
one-program path and the step-by-step path give equal decisions (text included)
on the samples and on the cases in ``rules/tests/``, and that the floor and JSON
logic agree with them on tag, warnings, coaching rules and compensation.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from json_logic import jsonLogic

ROOT = Path(__file__).resolve().parent.parent
#: The evaluation date, passed in as the pipeline passes its clock's date.
TODAY = date(2026, 11, 26)
sys.path.insert(0, str(ROOT))

from bench.cel_engines import _facts  # noqa: E402
from connectors.sandbox_seed import build  # noqa: E402
from integration.domain.model import Decision, Facts  # noqa: E402
from integration.engine.casebook import case_facts  # noqa: E402
from integration.engine.evaluate import evaluate  # noqa: E402
from integration.engine.ruleset import Ruleset, load_ruleset  # noqa: E402
from integration.engine.yamlsource import load  # noqa: E402

STRATEGIC = ("Data Platform", "Analytics Cloud")
Outcome = tuple[str, tuple[str, ...], tuple[str, ...], bool]


def floor(f: Facts) -> Outcome:
    """The shipped rules by hand (keep in step with rules/strategy.yaml)."""
    o, a, products = f.opportunity, f.account, f.products
    target = a.employees >= 1000 and a.industry in ("Manufacturing", "Healthcare")
    strategic = any(p in STRATEGIC for p in products)
    traditional = bool(products) and not strategic
    open_deal = not o.is_closed
    late = open_deal and o.probability >= 60
    large = o.amount >= 100000
    exception = o.exception_reason != ""
    if target and strategic:
        fit = "On Strategy"
    elif exception:
        fit = "Off Strategy (Approved)"
    else:
        fit = "Off Strategy"
    off = fit == "Off Strategy"
    warnings = tuple(
        name
        for name, hit in (
            ("off-strategy-late-stage", off and late),
            ("large-off-strategy-no-reason", off and large and open_deal and not exception),
            ("target-market-traditional-only", target and traditional and open_deal),
        )
        if hit
    )
    coaching = tuple(
        name
        for name, hit in (
            ("big-off-strategy-deal", off and large and open_deal),
            ("late-stage-off-strategy", off and late and not large),
            ("strategic-product-outside-target", off and strategic and open_deal),
        )
        if hit
    )
    return fit, warnings, coaching, a.on_target_list


_STRATEGIC = {"some": [{"var": "products"}, {"in": [{"var": ""}, list(STRATEGIC)]}]}
SEGMENTS: dict[str, Any] = {
    "target_market": {
        "and": [
            {">=": [{"var": "account.employees"}, 1000]},
            {"in": [{"var": "account.industry"}, ["Manufacturing", "Healthcare"]]},
        ]
    },
    "strategic_products": _STRATEGIC,
    "traditional_only": {"and": [{">": [{"var": "products.length"}, 0]}, {"!": _STRATEGIC}]},
    "open_deal": {"!": {"var": "opportunity.is_closed"}},
    "late_stage": {
        "and": [
            {"!": {"var": "opportunity.is_closed"}},
            {">=": [{"var": "opportunity.probability"}, 60]},
        ]
    },
    "large_deal": {">=": [{"var": "opportunity.amount"}, 100000]},
    "has_exception": {"!=": [{"var": "opportunity.exception_reason"}, ""]},
}
_OFF = {"==": [{"var": "fit"}, "Off Strategy"]}


def _seg(name: str) -> dict:
    return {"var": f"segment.{name}"}


FIT: list[tuple[str, Any]] = [
    ("On Strategy", {"and": [_seg("target_market"), _seg("strategic_products")]}),
    ("Off Strategy (Approved)", _seg("has_exception")),
    ("Off Strategy", _seg("target_market")),
    ("Off Strategy", True),
]
WARNINGS: list[tuple[str, Any]] = [
    ("off-strategy-late-stage", {"and": [_OFF, _seg("late_stage")]}),
    (
        "large-off-strategy-no-reason",
        {"and": [_OFF, _seg("large_deal"), _seg("open_deal"), {"!": _seg("has_exception")}]},
    ),
    (
        "target-market-traditional-only",
        {"and": [_seg("target_market"), _seg("traditional_only"), _seg("open_deal")]},
    ),
]
COACHING: list[tuple[str, Any]] = [
    ("big-off-strategy-deal", {"and": [_OFF, _seg("large_deal"), _seg("open_deal")]}),
    ("late-stage-off-strategy", {"and": [_OFF, _seg("late_stage"), {"!": _seg("large_deal")}]}),
    (
        "strategic-product-outside-target",
        {"and": [_OFF, _seg("strategic_products"), _seg("open_deal")]},
    ),
]
ELIGIBLE: Any = {"var": "account.on_target_list"}


def json_logic(f: Facts) -> Outcome:
    """The shipped rules in JSON logic, segments first, then fit, as the engine orders them."""
    data = f.to_variables()
    segments: dict[str, bool] = {}
    data["segment"] = segments
    for name, rule in SEGMENTS.items():
        segments[name] = bool(jsonLogic(rule, data))
    fit = next(tag for tag, rule in FIT if jsonLogic(rule, data))
    data["fit"] = fit
    warnings = tuple(n for n, rule in WARNINGS if jsonLogic(rule, data))
    coaching = tuple(n for n, rule in COACHING if jsonLogic(rule, data))
    return fit, warnings, coaching, bool(jsonLogic(ELIGIBLE, data))


def outcome(d: Decision) -> Outcome:
    return (
        d.fit,
        tuple(w.rule for w in d.warnings),
        tuple(t.rule for t in d.coaching),
        d.comp_eligible,
    )


def full(d: Decision) -> tuple:
    """Everything a decision says, coaching text included."""
    return (d, tuple((t.rule, t.subject, t.body) for t in d.coaching))


def sample_facts(count: int) -> list[Facts]:
    sample = build(opportunities=count, today=TODAY)
    accounts = {a["id"]: a for a in sample.accounts}
    listed = {account_id for account_id, _ in sample.target_list}
    owners = {o["id"]: o for o in sample.owners}
    return [_facts(o, accounts, listed, owners) for o in sample.opportunities]


def rule_test_facts() -> list[Facts]:
    cases = []
    for path in sorted((ROOT / "rules" / "tests").glob("*.yaml")):
        document, problems = load(path.read_text(encoding="utf-8"), str(path))
        assert not problems, problems
        cases += [case_facts(case) for case in document]
    return cases


def check_identical(ruleset: Ruleset, samples: list[Facts], cases: list[Facts]) -> None:
    for facts in [*samples, *cases]:
        fast = evaluate(facts, ruleset, TODAY)
        step = evaluate(facts, ruleset, TODAY, one_program=False)
        assert full(fast) == full(step), (facts.opportunity.id, fast, step)
    for facts in samples:
        expected = outcome(evaluate(facts, ruleset))
        assert floor(facts) == expected, ("floor", facts.opportunity.id)
        assert json_logic(facts) == expected, ("json-logic", facts.opportunity.id)


def timed(engines: dict[str, Callable[[Facts], Any]], samples: list[Facts], rounds: int) -> dict:
    """Best µs per opportunity for each engine, rounds alternating between them."""
    best = dict.fromkeys(engines, float("inf"))
    for _ in range(rounds):
        for name, run in engines.items():
            start = time.process_time()
            for facts in samples:
                run(facts)
            best[name] = min(best[name], (time.process_time() - start) / len(samples) * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=15)
    options = parser.parse_args()
    ruleset, problems = load_ruleset(ROOT / "rules")
    assert ruleset is not None, problems
    samples, cases = sample_facts(options.samples), rule_test_facts()
    check_identical(ruleset, samples, cases)
    print(
        f"identical decisions: {len(samples)} seeded opportunities and "
        f"{len(cases)} rule-test cases (one program = step by step; floor and "
        "JSON logic agree on tag, warnings, coaching and compensation)"
    )
    engines = {
        "plain Python floor (no text)": floor,
        "evaluate() as the pipeline calls it": lambda f: evaluate(f, ruleset, TODAY),
        "evaluate(), step by step": lambda f: evaluate(f, ruleset, TODAY, one_program=False),
        "panzi-json-logic (no text)": json_logic,
    }
    best = timed(engines, samples, options.rounds)
    base = best["plain Python floor (no text)"]
    print(f"\n{'engine':<40} {'µs / opportunity':>17} {'x floor':>8}")
    for name, us in best.items():
        print(f"{name:<40} {us:>17.1f} {us / base:>7.1f}x")


if __name__ == "__main__":
    main()
