"""The one-program path decides exactly as the step-by-step path, errors and text included.

``evaluate`` runs a ruleset's conditions as one CEL program over only the fields
they read and falls back to one program per condition when an opportunity's run
errs; reason and warning text is cached by the values a template names; coaching
text is rendered when first read. Every test compares against the step-by-step
path (``one_program=False``) or states the text a rep would see.
"""

from __future__ import annotations

from pathlib import Path

from test_engine import TARGET, complete, facts

from integration.domain.model import Account, Owner
from integration.engine.casebook import case_facts
from integration.engine.evaluate import evaluate
from integration.engine.program import plan_for
from integration.engine.ruleset import load_ruleset
from integration.engine.yamlsource import load

ROOT = Path(__file__).resolve().parent.parent


def _same(ruleset, f) -> object:
    fast = evaluate(f, ruleset)
    step = evaluate(f, ruleset, one_program=False)
    assert fast == step
    assert [(t.subject, t.body) for t in fast.coaching] == [
        (t.subject, t.body) for t in step.coaching
    ]
    return fast


def _ruleset(tmp_path: Path, text: str):
    (tmp_path / "strategy.yaml").write_text(complete(text), encoding="utf-8")
    ruleset, problems = load_ruleset(tmp_path)
    assert problems == [], problems
    return ruleset


def _variety() -> list:
    owner = Owner(id="U-1", name="Dana Reyes", manager_id="U-9")
    retail = Account(id="ACC-2", name="Shopright", industry="Retail", employees=300)
    return [
        facts(),
        facts(products=("Data Platform",), account=TARGET, amount=250000.0, probability=80),
        facts(products=("Support Renewal",), account=TARGET, probability=70, owner=owner),
        facts(products=("Analytics Cloud",), account=retail, amount=150000.0, owner=owner),
        facts(account=retail, amount=500000.0, probability=90, stage="Negotiation", owner=owner),
        facts(account=retail, exception_reason="Opens doors at a target account"),
        facts(account=TARGET, is_closed=True, is_won=True, close_date="2026-01-15"),
    ]


def test_shipped_rules_decide_the_same_on_both_paths(rules_dir):
    ruleset, _ = load_ruleset(rules_dir)
    assert plan_for(ruleset).program is not None
    for f in _variety():
        _same(ruleset, f)


def test_rule_test_cases_decide_the_same_on_both_paths(rules_dir):
    ruleset, _ = load_ruleset(rules_dir)
    for path in sorted((ROOT / "rules" / "tests").glob("*.yaml")):
        document, problems = load(path.read_text(encoding="utf-8"), str(path))
        assert problems == []
        for case in document:
            _same(ruleset, case_facts(case))


def test_segments_naming_segments_fit_in_later_rules_and_look_alike_strings(tmp_path):
    ruleset = _ruleset(
        tmp_path,
        """\
strategy: s
segments:
  big: opportunity.amount >= 1000
  big_and_open: segment.big && !opportunity.is_closed
  named: 'opportunity.name == "segment.big fit"'
fit:
  - when: segment.big_and_open
    tag: Big
    reason: "{{ opportunity.name }}"
  - when: "true"
    tag: Small
    reason: small
warnings:
  - name: big-named
    when: fit == "Big" && segment.named
    message: "{{ opportunity.name }} is big"
coaching:
  tasks:
    - name: c
      when: fit == "Big"
      subject: "{{ owner.name }} big"
      body: "{{ account.name }}"
compensation:
  eligible_when: fit != "Small"
""",
    )
    assert plan_for(ruleset).program is not None
    big = _same(ruleset, facts(amount=5000.0, name="segment.big fit", owner=Owner(name="Ana")))
    assert big.fit == "Big" and big.reason == "segment.big fit"
    assert [w.message for w in big.warnings] == ["segment.big fit is big"]
    assert big.comp_eligible is True
    assert (big.coaching[0].subject, big.coaching[0].body) == ("Ana big", "")
    small = _same(ruleset, facts(amount=5.0, name="x"))
    assert (small.fit, small.warnings, small.comp_eligible) == ("Small", (), False)


def test_an_opportunity_whose_run_errs_gets_every_error_recorded(tmp_path):
    ruleset = _ruleset(
        tmp_path,
        """\
strategy: s
segments:
  numbered: size(products) > 1 && int(products[1]) > 0
fit:
  - when: segment.numbered
    tag: Numbered
    reason: r
  - when: "true"
    tag: Other
    reason: r
warnings:
  - name: odd
    when: opportunity.probability > 90 && 100 / (opportunity.probability - 100) > 0
    message: m
compensation:
  eligible_when: "true"
""",
    )
    odd = _same(ruleset, facts(products=("a", "b"), probability=100))
    assert [e.split(":")[0] for e in odd.errors] == ["segment numbered", "warning odd"]
    assert odd.fit == "Other" and odd.comp_eligible is True
    assert _same(ruleset, facts(products=("a", "7"), probability=50)).fit == "Numbered"


def test_cached_text_follows_the_values_its_template_names(rules_dir):
    ruleset, _ = load_ruleset(rules_dir)
    steel = Account(id="A", name="Steel", industry="Manufacturing", employees=5000)
    clinic = Account(id="B", name="Clinic", industry="Healthcare", employees=1200)
    first = evaluate(facts(products=("Data Platform",), account=steel), ruleset)
    second = evaluate(facts(products=("Data Platform",), account=clinic), ruleset)
    third = evaluate(facts(products=("Analytics Cloud",), account=steel), ruleset)
    assert "Manufacturing, 5000 employees" in first.reason
    assert "Healthcare, 1200 employees" in second.reason
    assert third.reason.endswith("buying Analytics Cloud")


def test_coaching_text_is_the_rendered_text_when_read(rules_dir):
    ruleset, _ = load_ruleset(rules_dir)
    owner = Owner(id="U-1", name="Dana Reyes", manager_id="U-9")
    retail = Account(id="ACC-2", name="Shopright", industry="Retail", employees=300)
    decision = evaluate(
        facts(account=retail, amount=500000.0, name="Big one", owner=owner, stage="Negotiation"),
        ruleset,
    )
    [task] = [t for t in decision.coaching if t.rule == "big-off-strategy-deal"]
    assert task.subject == "Coach Dana Reyes: large off-strategy deal Big one"
    assert "Shopright (500,000, Negotiation)" in task.body


def test_cached_text_is_keyed_by_the_fields_its_template_reads(tmp_path):
    # The text cache keys a template by the record fields it reads (``account.name``)
    # or, when a record is used any other way (``account["name"]``), by all of it;
    # values of different types (1000 and 1000.0) never share a text.
    ruleset = _ruleset(
        tmp_path,
        """\
strategy: s
segments:
  big: opportunity.amount >= 1000
fit:
  - when: segment.big
    tag: Big
    reason: "{{ account.name }} at {{ opportunity.amount }}"
  - when: "true"
    tag: Small
    reason: "{{ account['name'] }} small"
warnings:
  - name: w
    when: fit == "Big"
    message: "{{ fit }} for {{ owner.name }}"
compensation:
  eligible_when: "true"
""",
    )
    steel = Account(id="A", name="Steel", industry="Manufacturing")
    clinic = Account(id="A", name="Clinic", industry="Manufacturing")
    ana, bo = Owner(name="Ana"), Owner(name="Bo")
    seen = [
        _same(ruleset, facts(account=steel, amount=1000, owner=ana)),
        _same(ruleset, facts(account=steel, amount=1000.0, owner=ana)),
        _same(ruleset, facts(account=clinic, amount=1000.0, owner=bo)),
        _same(ruleset, facts(account=steel, amount=5.0)),
        _same(ruleset, facts(account=clinic, amount=5.0)),
    ]
    assert [d.reason for d in seen] == [
        "Steel at 1000",
        "Steel at 1000.0",
        "Clinic at 1000.0",
        "Steel small",
        "Clinic small",
    ]
    assert [w.message for d in seen for w in d.warnings] == [
        "Big for Ana",
        "Big for Ana",
        "Big for Bo",
    ]
