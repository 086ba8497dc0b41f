"""The rule engine's contract: ``evaluate(facts, ruleset) -> Decision``."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

from integration.domain.model import Account, Facts, Opportunity, Owner
from integration.engine.evaluate import evaluate, is_frozen
from integration.engine.rulebook import (
    LiveRules,
    RulesUnavailable,
    load_rulebook,
    read_folder,
    version_of,
)
from integration.engine.ruleset import load_ruleset
from integration.engine.templates import Template

# Every optional section spelled out: omitting one trips the bug that
# test_rules_check.test_optional_sections_may_be_omitted records.
OPTIONAL = {
    "segments": "segments: {}",
    "warnings": "warnings: []",
    "coaching": "coaching:\n  tasks: []",
    "target_accounts": "target_accounts:\n  crm_field: true",
    "managers": "managers: {}",
    "fields": "fields: {}",
}


def complete(text: str) -> str:
    present = {line.split(":")[0] for line in text.splitlines() if line[:1].isalpha()}
    return text + "".join(f"{v}\n" for k, v in OPTIONAL.items() if k not in present)


def ruleset_from(tmp_path: Path, text: str):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "strategy.yaml").write_text(complete(text), encoding="utf-8")
    ruleset, problems = load_ruleset(tmp_path)
    assert problems == [], problems
    return ruleset


@pytest.fixture
def shipped(rules_dir):
    ruleset, problems = load_ruleset(rules_dir)
    assert problems == []
    return ruleset


def facts(
    *,
    products: tuple[str, ...] = (),
    account: Account | None = None,
    owner: Owner | None = None,
    **opportunity,
) -> Facts:
    return Facts(
        crm="sandbox",
        opportunity=Opportunity(id=opportunity.pop("id", "OPP-1"), **opportunity),
        account=account or Account(),
        owner=owner or Owner(),
        products=products,
    )


TARGET = Account(id="ACC-1", name="Acme Steel", industry="Manufacturing", employees=5000)


# -- fit --------------------------------------------------------------------------------------


def test_first_matching_fit_rule_wins(shipped):
    # Target market + strategic product, and also an exception reason: rule 1 holds first.
    decision = evaluate(
        facts(products=("Data Platform",), account=TARGET, exception_reason="Because"), shipped
    )
    assert decision.fit == "On Strategy"
    assert (decision.fit_rule, decision.counts_as) == ("icp-strategic-products", "on")
    assert decision.reason.startswith("Ideal client profile (Manufacturing, 5000 employees)")


def test_later_rules_apply_when_earlier_ones_do_not(shipped):
    approved = evaluate(facts(account=TARGET, exception_reason="Opens doors"), shipped)
    assert approved.fit == "Off Strategy (Approved)"
    assert approved.reason == "Off strategy for a stated reason: Opens doors"
    wrong_products = evaluate(facts(account=TARGET, products=("Support Renewal",)), shipped)
    assert wrong_products.fit == "Off Strategy"
    assert wrong_products.reason.startswith("Right account, wrong products: Acme Steel")


def test_segments_are_computed_in_order_and_usable_below(tmp_path):
    ruleset = ruleset_from(
        tmp_path,
        """\
strategy: s
segments:
  big: opportunity.amount >= 100
  big_and_late: segment.big && opportunity.probability >= 60
fit:
  - when: segment.big_and_late
    tag: Late Big
    reason: r1
  - when: "true"
    tag: Other
    reason: r2
compensation:
  eligible_when: segment.big
""",
    )
    both = evaluate(facts(amount=500, probability=80), ruleset)
    assert both.fit == "Late Big"
    assert both.fired[:2] == ("segment:big", "segment:big_and_late")
    assert both.comp_eligible is True
    small = evaluate(facts(amount=5, probability=80), ruleset)
    assert small.fit == "Other"
    assert not any(f.startswith("segment:") for f in small.fired)
    assert small.comp_eligible is False


def test_empty_deal_evaluates_without_errors(shipped):
    decision = evaluate(Facts(crm="sandbox", opportunity=Opportunity(id="X")), shipped)
    assert decision.errors == ()
    assert decision.fit == "Off Strategy"
    assert decision.reason.startswith("Outside the target market")
    assert decision.warnings == () and decision.coaching == ()
    assert decision.comp_eligible is False
    assert decision.frozen is False


def test_deal_with_no_account_no_products_no_owner_still_gets_coaching(shipped):
    decision = evaluate(facts(amount=200000, stage="Proposal", probability=60), shipped)
    assert decision.errors == ()
    rules = [t.rule for t in decision.coaching]
    assert rules == ["big-off-strategy-deal"]
    task = decision.coaching[0]
    assert "an unknown account" in task.body
    assert task.assign_to == "manager" and task.priority == "High" and task.due_in_days == 3


def test_fit_is_visible_in_warnings_coaching_and_compensation(tmp_path):
    ruleset = ruleset_from(
        tmp_path,
        """\
strategy: s
fit:
  - when: opportunity.amount > 10.0
    tag: Big
    reason: big
  - when: "true"
    tag: Small
    reason: small
warnings:
  - name: small-deal
    when: fit == "Small"
    message: "Small ({{ fit }})"
coaching:
  max_open_per_rep: 1
  tasks:
    - name: coach-small
      when: fit == "Small"
      subject: "Subject {{ fit }}"
      body: body
compensation:
  eligible_when: fit == "Big"
""",
    )
    small = evaluate(facts(amount=1), ruleset)
    assert [(w.rule, w.message) for w in small.warnings] == [("small-deal", "Small (Small)")]
    assert [t.subject for t in small.coaching] == ["Subject Small"]
    assert small.comp_eligible is False
    big = evaluate(facts(amount=100), ruleset)
    assert big.warnings == () and big.coaching == () and big.comp_eligible is True
    assert big.warning_text == ""


def test_warnings_are_joined_for_the_rep(shipped):
    decision = evaluate(
        facts(
            amount=500000,
            stage="Proposal",
            probability=60,
            products=("Data Platform",),
            account=Account(id="A", industry="Technology", employees=15000),
        ),
        shipped,
    )
    assert [w.rule for w in decision.warnings] == [
        "off-strategy-late-stage",
        "large-off-strategy-no-reason",
    ]
    assert decision.warning_text == " | ".join(w.message for w in decision.warnings)
    assert decision.desired()["warning"].startswith("Off-strategy deal at Proposal:")


# -- templates --------------------------------------------------------------------------------


def test_messages_are_plain_text(shipped):
    owner = Owner(id="U-1", name="Sean O'Brien", manager_id="U-9")
    decision = evaluate(
        facts(
            owner=owner,
            name="<b>Big</b> & Co",
            amount=300000,
            stage="Needs Analysis",
            probability=40,
        ),
        shipped,
    )
    [task] = decision.coaching
    assert task.subject == "Coach Sean O'Brien: large off-strategy deal <b>Big</b> & Co"
    assert "&#39;" not in task.body and "&amp;" not in task.body
    assert "Sean O'Brien is pursuing <b>Big</b> & Co" in task.body


@pytest.mark.parametrize(
    "template",
    ["{{ owner.__class__ }}", "{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}"],
)
def test_attribute_tricks_are_rejected_at_check_time(tmp_path, template):
    text = f"""\
strategy: s
fit:
  - when: "true"
    tag: T
    reason: "{template}"
compensation:
  eligible_when: "false"
"""
    (tmp_path / "strategy.yaml").write_text(complete(text))
    ruleset, problems = load_ruleset(tmp_path)
    assert ruleset is None
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [(5, "'reason'")]
    assert "unsafe" in problems[0].message


@pytest.mark.parametrize("template", ["{{ owner.__class__ }}", "{{ ''.__class__.__mro__ }}"])
def test_attribute_tricks_raise_at_render_time_too(template):
    with pytest.raises(SecurityError):
        Template(template).render({"owner": {"name": "x"}})


def test_a_template_failing_at_run_time_is_recorded_and_not_exposed(tmp_path):
    ruleset = ruleset_from(
        tmp_path,
        """\
strategy: s
fit:
  - when: "true"
    tag: T
    reason: "{{ 100 // opportunity.probability }}"
compensation:
  eligible_when: "false"
""",
    )
    decision = evaluate(facts(probability=0), ruleset)
    assert decision.fit == "T"
    assert decision.errors and decision.errors[0].startswith("fit T reason:")
    assert "division" in decision.errors[0]


def test_a_template_cannot_change_what_later_rules_see(tmp_path):
    text = """\
strategy: s
fit:
  - when: "true"
    tag: T
    reason: "{{ owner.update({'name': 'Mallory'}) }}ok"
warnings:
  - name: w
    when: "true"
    message: "{{ owner.name }}"
compensation:
  eligible_when: "false"
"""
    (tmp_path / "strategy.yaml").write_text(complete(text))
    ruleset, _ = load_ruleset(tmp_path)
    if ruleset is None:
        return  # rejected at check time: fine
    decision = evaluate(facts(owner=Owner(id="U", name="Dana")), ruleset)
    assert decision.warnings[0].message == "Dana"


# -- run-time errors --------------------------------------------------------------------------


def test_run_time_error_is_recorded_and_counts_as_false(tmp_path):
    ruleset = ruleset_from(
        tmp_path,
        """\
strategy: s
fit:
  - when: size(products) > 1 && int(products[1]) > 0
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
    decision = evaluate(facts(products=("a", "b"), probability=100), ruleset)
    assert decision.fit == "Other"
    assert decision.warnings == ()
    assert decision.comp_eligible is True
    assert len(decision.errors) == 2
    assert decision.errors[0].startswith("fit Numbered:")
    assert decision.errors[1].startswith("warning odd:")
    fine = evaluate(facts(products=("a", "7"), probability=50), ruleset)
    assert fine.fit == "Numbered" and fine.errors == ()


# -- freeze -----------------------------------------------------------------------------------


def test_closed_before_the_freeze_date_is_frozen(shipped):
    assert shipped.freeze_closed_before.isoformat() == "2026-10-01"
    closed_early = evaluate(facts(is_closed=True, close_date="2026-09-30"), shipped)
    assert closed_early.frozen is True
    on_the_day = evaluate(facts(is_closed=True, close_date="2026-10-01"), shipped)
    assert on_the_day.frozen is False
    open_early = evaluate(facts(is_closed=False, close_date="2020-01-01"), shipped)
    assert open_early.frozen is False


def test_freeze_edge_cases():
    from datetime import date

    closed = facts(is_closed=True, close_date="2026-01-01")
    assert is_frozen(closed, None) is False
    assert is_frozen(facts(is_closed=True, close_date=""), date(2027, 1, 1)) is False
    assert is_frozen(facts(is_closed=True, close_date="garbage"), date(2027, 1, 1)) is False
    assert is_frozen(facts(is_closed=True, close_date="2026-01-01T10:00:00Z"), date(2027, 1, 1))


# -- versions and reloading -------------------------------------------------------------------


def test_ruleset_version_changes_with_the_file(rules_dir):
    first, _ = load_ruleset(rules_dir)
    again, _ = load_ruleset(rules_dir)
    assert first.version == again.version and len(first.version) == 12
    path = rules_dir / "strategy.yaml"
    path.write_text(path.read_text() + "\n# a comment\n")
    changed, _ = load_ruleset(rules_dir)
    assert changed.version != first.version
    decision = evaluate(facts(), changed)
    assert decision.ruleset_version == changed.version


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_live_rules_follow_the_store_not_the_folder(rules_dir, sqlite_store):
    clock = _Clock()
    live = LiveRules(sqlite_store.versions, poll_seconds=2.0, clock=clock)
    assert live.current() is None and "no rules version has been published" in str(live.problems[0])
    sqlite_store.versions.publish(read_folder(rules_dir), who="test")
    assert live.current() is None  # polled less than poll_seconds ago
    clock.now += 2.0
    good = live.require()
    assert live.problems == [] and good.version == version_of(read_folder(rules_dir))

    path = rules_dir / "strategy.yaml"
    path.write_text(path.read_text().replace(">= 1000", ">= 500"))
    clock.now += 10
    assert live.current() is good  # editing the folder changes nothing live

    sqlite_store.versions.publish(read_folder(rules_dir), who="test")
    clock.now += 2.0
    newer = live.current()
    assert newer is not good and newer.version != good.version
    small_manufacturer = Account(id="A", industry="Manufacturing", employees=700)
    decision = evaluate(
        facts(account=small_manufacturer, products=("Data Platform",)), newer.ruleset
    )
    assert decision.fit == "On Strategy"


def test_live_rules_keep_the_last_good_version_when_a_stored_one_cannot_load(
    rules_dir, sqlite_store
):
    clock = _Clock()
    live = LiveRules(sqlite_store.versions, clock=clock)
    sqlite_store.versions.publish(read_folder(rules_dir), who="test")
    good = live.require()
    broken = {**read_folder(rules_dir), "target_accounts.csv": b"crm,account_id\nzoho,1\n"}
    sqlite_store.versions.publish(broken, who="test")
    assert live.refresh() is good
    assert [p.line for p in live.problems] == [2]


def test_live_rules_bootstrap_reports_an_invalid_working_copy(tmp_path, sqlite_store):
    (tmp_path / "strategy.yaml").write_text("strategy: [\n")

    def bootstrap():
        return load_rulebook(tmp_path)[1]

    live = LiveRules(sqlite_store.versions, bootstrap=bootstrap)
    assert live.current() is None
    with pytest.raises(RulesUnavailable) as raised:
        live.require()
    assert "not valid YAML" in str(raised.value)
