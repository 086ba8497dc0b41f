"""Rule-file structure checks, directly: each problem at the line of the key it is about."""

from __future__ import annotations

from integration.engine.conditions import Scope
from integration.engine.rules_schema import Checker
from integration.engine.yamlsource import load

SOURCE = """\
name: 5
enabled: "yes"
max_open: 0
priority: urgent
oops: 1
message: "{{ opportunity.amout }}"
when: opportunity.amount > "big"
items: {a: 1}
"""


def _checked():
    mapping, problems = load(SOURCE, "rules/fit.yaml")
    assert problems == []
    return mapping, Checker("rules/fit.yaml")


def _problems(checker: Checker) -> list[str]:
    return [str(p) for p in checker.problems]


def test_wrong_types_fall_back_to_the_default_and_say_where():
    mapping, check = _checked()
    assert check.text(mapping, "name") is None
    assert check.boolean(mapping, "enabled", default=True) is True
    assert check.integer(mapping, "max_open", default=3, minimum=1) == 3
    assert check.choice(mapping, "priority", ("low", "normal", "high"), "normal") == "normal"
    assert _problems(check) == [
        "rules/fit.yaml:1: 'name' must be text; got a whole number 5",
        "rules/fit.yaml:2: 'enabled' must be true or false; got text 'yes'",
        "rules/fit.yaml:3: 'max_open' must be at least 1; got 0",
        "rules/fit.yaml:4: 'priority' must be one of low, normal, high; got 'urgent'",
    ]


def test_unknown_and_missing_keys():
    mapping, check = _checked()
    check.only_keys(
        mapping, ("name", "enabled", "max_open", "priority", "message", "when", "items"), "a rule"
    )
    assert check.text(mapping, "subject", required=True) is None
    assert _problems(check) == [
        "rules/fit.yaml:5: unknown key 'oops' in a rule (allowed: name, enabled, max_open, "
        "priority, message, when, items)",
        "rules/fit.yaml:1: missing key 'subject'",
    ]


def test_mappings_and_lists_must_be_what_they_say():
    mapping, check = _checked()
    assert check.sequence(mapping["items"], mapping.line_of("items"), "items") is False
    assert check.mapping(mapping["name"], 1, "fields") is False
    assert check.sequence(None, 9, "fit", required=True) is False
    assert _problems(check) == [
        "rules/fit.yaml:8: items must be a list (items starting with '- '); got a mapping",
        "rules/fit.yaml:1: fields must be a mapping of key: value; got a whole number",
        "rules/fit.yaml:9: missing key 'fit'",
    ]


def test_templates_are_rendered_with_sample_data_at_check_time():
    mapping, check = _checked()
    assert check.template(mapping, "message") is None
    [problem] = _problems(check)
    assert problem.startswith("rules/fit.yaml:6: 'message': template error: ")


def test_conditions_are_evaluated_on_typed_samples_at_check_time():
    mapping, check = _checked()
    assert check.condition_key(mapping, "when", Scope(segments=())) is None
    [problem] = _problems(check)
    assert problem.startswith("rules/fit.yaml:7: type error in 'opportunity.amount > \"big\"'")


def test_a_good_condition_passes():
    check = Checker("rules/fit.yaml")
    condition = check.condition("account.employees > 100 && crm == 'sandbox'", 3, Scope(()))
    assert condition is not None and check.problems == []


def test_true_is_not_a_number():
    mapping, _ = load("max_open: true\n", "rules/coaching.yaml")
    check = Checker("rules/coaching.yaml")
    assert check.integer(mapping, "max_open", default=3, minimum=1) == 3
    assert _problems(check) == [
        "rules/coaching.yaml:1: 'max_open' must be a whole number; got true or false True"
    ]
