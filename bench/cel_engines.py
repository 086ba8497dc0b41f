"""Benchmark CEL libraries on the shipped rules: ``python bench/cel_engines.py``.

Evaluates every expression of ``rules/strategy.yaml`` (segments in order, then
fit, warnings, coaching and compensation, the way the engine does) for sample
opportunities from the sandbox seed, with:

- ``common-expression-language`` (module ``cel``, Rust): one ``cel.Context`` per
  opportunity, built once and reused for every expression, because converting
  Python values into CEL values costs more than evaluating
  (see /work/shared/reference/rule-engines.md);
- ``cel-python`` (module ``celpy``): the facts converted once with ``json_to_cel``;
- plain Python lambdas written by hand for the same rules, as the floor.

It prints µs per opportunity (a whole ruleset), compile time, whether the
engines agree, and whether each reports an undefined name at compile time.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import cel
import celpy
import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.sandbox_seed import build  # noqa: E402
from integration.domain.model import Account, Facts, Opportunity, Owner  # noqa: E402

SAMPLES = 300
ROUNDS = 5
TYPO = 'acount.industry == "Retail"'
Ruleset = dict[str, Any]


def load_rules() -> Ruleset:
    return yaml.safe_load((ROOT / "rules" / "strategy.yaml").read_text())


def expressions(rules: Ruleset) -> dict[str, list[tuple[str, str]]]:
    """The ruleset's CEL, grouped in evaluation order: (name, expression)."""
    return {
        "segments": list(rules["segments"].items()),
        "fit": [(r["tag"], r["when"]) for r in rules["fit"]],
        "warnings": [(r["name"], r["when"]) for r in rules.get("warnings", [])],
        "coaching": [(r["name"], r["when"]) for r in rules["coaching"]["tasks"]],
        "compensation": [("eligible", rules["compensation"]["eligible_when"])],
    }


def sample_variables(count: int) -> list[dict[str, Any]]:
    """Rule variables for ``count`` seeded opportunities (with the target list applied)."""
    sample = build(opportunities=count, today=date(2026, 11, 26))
    accounts = {a["id"]: a for a in sample.accounts}
    listed = {account_id for account_id, _ in sample.target_list}
    owners = {o["id"]: o for o in sample.owners}
    return [_facts(o, accounts, listed, owners).to_variables() for o in sample.opportunities]


def _facts(opp: dict, accounts: dict, listed: set[str], owners: dict) -> Facts:
    fields = {k: opp[k] for k in Opportunity.__dataclass_fields__ if k in opp}
    row = accounts.get(opp["account_id"])
    account = Account()
    if row:
        on_list = row["id"] in listed or row["target_flag"]
        names = Account.__dataclass_fields__
        account = Account(**{k: v for k, v in row.items() if k in names}, on_target_list=on_list)
    owner = Owner(**owners[opp["owner_id"]])
    products = tuple(p[0] for p in opp["products"])
    return Facts("sandbox", Opportunity(**fields), account, owner, products)


class Engine:
    """Compile once, then run the whole ruleset for one opportunity's variables."""

    name = ""

    def __init__(self, rules: Ruleset) -> None:
        start = time.perf_counter()
        self.groups = {
            g: [(n, self.compile(e)) for n, e in items] for g, items in expressions(rules).items()
        }
        # Re-bind segment after each one only when a segment refers to another.
        self.chained = any("segment." in e for _, e in expressions(rules)["segments"])
        self.compile_ms = (time.perf_counter() - start) * 1000

    def compile(self, expr: str) -> Any:
        raise NotImplementedError

    def run(self, variables: dict[str, Any]) -> tuple:
        """(segments, fit, warnings, coaching, comp) for one opportunity."""
        scope = self.scope(variables)
        segments = {}
        for name, program in self.groups["segments"]:
            segments[name] = self.execute(program, scope)
            if self.chained:
                self.bind(scope, "segment", segments)
        self.bind(scope, "segment", segments)
        fit = next(n for n, p in self.groups["fit"] if self.execute(p, scope))
        self.bind(scope, "fit", fit)
        fired = {
            g: [n for n, p in self.groups[g] if self.execute(p, scope)]
            for g in ("warnings", "coaching")
        }
        comp = self.execute(self.groups["compensation"][0][1], scope)
        return segments, fit, fired["warnings"], fired["coaching"], bool(comp)

    def scope(self, variables: dict[str, Any]) -> Any:
        raise NotImplementedError

    def bind(self, scope: Any, name: str, value: Any) -> None:
        raise NotImplementedError

    def execute(self, program: Any, scope: Any) -> bool:
        raise NotImplementedError


class RustCel(Engine):
    name = "common-expression-language (cel)"

    def compile(self, expr: str) -> Any:
        return cel.compile(expr)

    def scope(self, variables: dict[str, Any]) -> Any:
        context = cel.Context()
        for key, value in variables.items():
            context.add_variable(key, value)
        return context

    def bind(self, scope: Any, name: str, value: Any) -> None:
        scope.add_variable(name, value)

    def execute(self, program: Any, scope: Any) -> bool:
        return program.execute(scope)


class CelPython(Engine):
    name = "cel-python (celpy)"

    def __init__(self, rules: Ruleset) -> None:
        self.env = celpy.Environment()
        super().__init__(rules)

    def compile(self, expr: str) -> Any:
        return self.env.program(self.env.compile(expr))

    def scope(self, variables: dict[str, Any]) -> Any:
        return dict(celpy.json_to_cel(variables))

    def bind(self, scope: Any, name: str, value: Any) -> None:
        scope[name] = celpy.json_to_cel(value)

    def execute(self, program: Any, scope: Any) -> bool:
        return bool(program.evaluate(scope))


STRATEGIC = ("Data Platform", "Analytics Cloud")
PYTHON_RULES: dict[str, Callable[[dict], Any]] = {
    "target_market": lambda v: v["account"]["employees"] >= 1000
    and v["account"]["industry"] in ("Manufacturing", "Healthcare"),
    "strategic_products": lambda v: any(p in STRATEGIC for p in v["products"]),
    "traditional_only": lambda v: bool(v["products"])
    and not any(p in STRATEGIC for p in v["products"]),
    "open_deal": lambda v: not v["opportunity"]["is_closed"],
    "late_stage": lambda v: not v["opportunity"]["is_closed"]
    and v["opportunity"]["probability"] >= 60,
    "large_deal": lambda v: v["opportunity"]["amount"] >= 100000,
    "has_exception": lambda v: v["opportunity"]["exception_reason"] != "",
}


def python_run(v: dict[str, Any]) -> tuple:
    """The same ruleset hand-written in Python (keep in step with strategy.yaml)."""
    s = {name: rule(v) for name, rule in PYTHON_RULES.items()}
    if s["target_market"] and s["strategic_products"]:
        fit = "On Strategy"
    elif s["has_exception"]:
        fit = "Off Strategy (Approved)"
    else:
        fit = "Off Strategy"
    off = fit == "Off Strategy"
    warnings = [
        name
        for name, hit in (
            ("off-strategy-late-stage", off and s["late_stage"]),
            (
                "large-off-strategy-no-reason",
                off and s["large_deal"] and s["open_deal"] and not s["has_exception"],
            ),
            (
                "target-market-traditional-only",
                s["target_market"] and s["traditional_only"] and s["open_deal"],
            ),
        )
        if hit
    ]
    coaching = [
        name
        for name, hit in (
            ("big-off-strategy-deal", off and s["large_deal"] and s["open_deal"]),
            ("late-stage-off-strategy", off and s["late_stage"] and not s["large_deal"]),
            (
                "strategic-product-outside-target",
                off and s["strategic_products"] and s["open_deal"],
            ),
        )
        if hit
    ]
    return s, fit, warnings, coaching, bool(v["account"]["on_target_list"])


def timed(run: Callable[[dict], tuple], samples: list[dict]) -> tuple[float, list[tuple]]:
    """Best-of-ROUNDS µs per opportunity, and the last round's results."""
    best, results = float("inf"), []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        results = [run(v) for v in samples]
        best = min(best, (time.perf_counter() - start) / len(samples) * 1e6)
    return best, results


def undefined_at_compile(compile_: Callable[[str], Any]) -> str:
    try:
        compile_(TYPO)
    except Exception as error:  # each library raises its own type
        return f"yes ({type(error).__name__})"
    return "no"


def main() -> None:
    rules = load_rules()
    samples = sample_variables(SAMPLES)
    count = sum(len(v) for v in expressions(rules).values())
    rust, celpy_engine = RustCel(rules), CelPython(rules)
    floor_us, expected = timed(python_run, samples)
    rows = [("plain Python (floor)", "-", floor_us, True, "n/a")]
    for engine in (rust, celpy_engine):
        us, results = timed(engine.run, samples)
        agrees = [r[1:] for r in results] == [r[1:] for r in expected]
        rows.append(
            (
                engine.name,
                f"{engine.compile_ms:.1f}",
                us,
                agrees,
                undefined_at_compile(engine.compile),
            )
        )
    table = Table(title=f"{count} expressions of rules/strategy.yaml x {SAMPLES} opportunities")
    for header in (
        "engine",
        "compile ms",
        "µs / opportunity",
        "vs Python",
        "agrees",
        f"compile rejects {TYPO!r}",
    ):
        table.add_column(header, justify="left" if header == "engine" else "right")
    for name, compile_ms, us, agrees, typo in rows:
        table.add_row(name, compile_ms, f"{us:.1f}", f"{us / floor_us:.0f}x", str(agrees), typo)
    console = Console(width=120)
    console.print(table)
    names = rust.groups["segments"][0][1].variables()
    console.print(
        "cel: Program.variables() lists the root names an expression uses "
        f"(e.g. {names}), so a checker can compare them with the declared variables."
    )


if __name__ == "__main__":
    main()
