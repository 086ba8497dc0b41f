"""The rule language admins need: ``today``, ``created_date``, named fit rules that say
how they count, tags checked against the fit rules, and problems in plain words."""

from __future__ import annotations

from datetime import date

import pytest
from test_rules_check import BASE, problems_of, swap, write_rules

from integration.domain.model import Facts, Opportunity
from integration.engine.evaluate import evaluate
from integration.engine.ruleset import load_ruleset
from integration.pipeline.planner import close_reason

PAST_DUE = """\
  - name: past-due
    when: opportunity.close_date != "" && opportunity.close_date < today
    message: "Close date {{ opportunity.close_date }} is past ({{ today }})"
"""


def _ruleset(tmp_path, text):
    ruleset, problems = load_ruleset(write_rules(tmp_path, text))
    assert problems == []
    return ruleset


def _facts(**opportunity):
    return Facts(crm="sandbox", opportunity=Opportunity(id="O-1", **opportunity))


def test_close_date_in_the_past_uses_today_and_never_fires_on_a_blank_date(tmp_path):
    ruleset = _ruleset(tmp_path, BASE.replace("warnings:\n", "warnings:\n" + PAST_DUE))
    day = date(2026, 12, 1)

    def warned(close_date: str) -> list[str]:
        return [w.rule for w in evaluate(_facts(close_date=close_date), ruleset, day).warnings]

    assert warned("2026-11-30") == ["past-due"]
    assert warned("2026-12-01") == [] and warned("2027-01-15") == []
    assert warned("") == []  # unknown close date: never "in the past"
    decision = evaluate(_facts(close_date="2026-11-30"), ruleset, day)
    assert decision.warnings[0].message == "Close date 2026-11-30 is past (2026-12-01)"


def test_created_date_is_a_variable(tmp_path):
    text = BASE.replace(
        "warnings:\n",
        'warnings:\n  - name: old\n    when: opportunity.created_date < "2026-01-01"\n'
        '    message: "Created {{ opportunity.created_date }}"\n',
    )
    ruleset = _ruleset(tmp_path, text)
    rules = [w.rule for w in evaluate(_facts(created_date="2025-06-30"), ruleset).warnings]
    assert rules == ["old"]


def test_fit_rules_have_names_and_count_as(tmp_path):
    text = BASE.replace(
        "  - when: segment.target_market\n    tag: On Strategy\n    reason: Target market\n",
        "  - name: icp\n    when: segment.target_market\n    tag: On Strategy\n"
        "    reason: Target market\n    counts_as: on\n"
        "  - name: approved\n    when: opportunity.exception_reason != ''\n"
        "    tag: Off Strategy (Approved)\n    counts_as: approved\n    reason: Stated\n",
    )
    ruleset = _ruleset(tmp_path, text)
    assert [(r.name, r.counts_as) for r in ruleset.fit] == [
        ("icp", "on"),
        ("approved", "approved"),
        ("Off Strategy", "off"),
    ]
    assert ruleset.counts_as("On Strategy") == "on" and ruleset.counts_as("icp") == "on"
    assert ruleset.counts_as("Off Strategy (Approved)") == "approved"
    assert ruleset.counts_as("Off Strategy") == "off"
    decision = evaluate(_facts(exception_reason="Board asked"), ruleset)
    assert (decision.fit_rule, decision.counts_as) == ("approved", "approved")
    assert "exception was approved" in close_reason(decision, _facts())


def test_a_tag_spelled_differently_still_counts_by_its_meaning(tmp_path):
    text = BASE.replace("tag: On Strategy", "tag: On strategy").replace(
        'fit == "Off Strategy" && opportunity.probability', "opportunity.probability"
    )
    ruleset = _ruleset(tmp_path, text.replace('fit == "Off Strategy" && segment.big', "true"))
    assert ruleset.counts_as("On strategy") == "on"


def test_unnamed_rules_sharing_a_tag_get_distinct_names(tmp_path):
    text = BASE.replace(
        '  - when: "true"\n    tag: Off Strategy\n',
        "  - when: segment.big\n    tag: Off Strategy\n    reason: Big\n"
        '  - when: "true"\n    tag: Off Strategy\n',
    )
    ruleset = _ruleset(tmp_path, text)
    assert [r.name for r in ruleset.fit] == ["On Strategy", "Off Strategy #2", "Off Strategy #3"]


@pytest.mark.parametrize(
    ("line", "new", "expected"),
    [
        (
            14,
            '    when: fit == "Off-Strategy" && opportunity.probability >= 60',
            'fit is compared with "Off-Strategy", a tag no fit rule gives '
            '(tags: On Strategy, Off Strategy); did you mean "Off Strategy"?',
        ),
        (
            20,
            """      when: '"On strategy" != fit && segment.big'""",
            'fit is compared with "On strategy", a tag no fit rule gives '
            '(tags: On Strategy, Off Strategy); did you mean "On Strategy"?',
        ),
        (
            14,
            '    when: fit in ["Off Strategy", "Off Strategy (Approved)"]',
            'fit is compared with "Off Strategy (Approved)", a tag no fit rule gives',
        ),
        (4, "  big: opportunity.amout >= 100000", "did you mean `opportunity.amount`?"),
        (3, "  target_market: acount.employees >= 1000", "did you mean `account`?"),
        (20, "      when: segment.bgi", "did you mean `segment.big`?"),
        (27, "  freeze_closed_befor: 2026-10-01", "did you mean `freeze_closed_before`?"),
    ],
)
def test_check_rejects_unknown_tags_and_suggests_the_nearest_name(tmp_path, line, new, expected):
    [(at, message)] = problems_of(write_rules(tmp_path, swap(line, new)))
    assert at == line and expected in message, message


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            "Coach {{ owner.nmae }}",
            "template error: unknown field 'owner.nmae'; did you mean `owner.name`?",
        ),
        (
            "Coach {{ ownr.name }}",
            "template error: unknown variable 'ownr'; did you mean `owner`?",
        ),
    ],
)
def test_template_errors_are_worded_plainly(tmp_path, template, expected):
    [(line, message)] = problems_of(write_rules(tmp_path, swap(21, f'      subject: "{template}"')))
    assert line == 21 and message == f"'subject': {expected}"
    assert "dict object" not in message
