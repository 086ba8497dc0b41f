"""``onstrategy rules check`` / ``rules test``: every problem at its exact FILE:LINE."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from integration.cli.commands import main
from integration.engine.rulebook import load_rulebook
from integration.engine.ruleset import load_ruleset

# A small valid rule file; each case below swaps one line for a broken one, so the
# line numbers stay those shown here.
BASE = """\
strategy: Test strategy
segments:
  target_market: account.employees >= 1000
  big: opportunity.amount >= 100000
fit:
  - when: segment.target_market
    tag: On Strategy
    reason: Target market
  - when: "true"
    tag: Off Strategy
    reason: Outside the target market
warnings:
  - name: late
    when: fit == "Off Strategy" && opportunity.probability >= 60
    message: "Late at {{ opportunity.stage }}"
coaching:
  max_open_per_rep: 2
  tasks:
    - name: big-off
      when: fit == "Off Strategy" && segment.big
      subject: "Coach {{ owner.name }}"
      body: Review it
      due_in_days: 3
      priority: High
compensation:
  eligible_when: account.on_target_list
  freeze_closed_before: 2026-10-01
target_accounts:
  crm_field: true
managers: {}
fields: {}
"""


def swap(line: int, new: str, text: str = BASE) -> str:
    lines = text.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


def write_rules(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "strategy.yaml").write_text(text, encoding="utf-8")
    return folder


def problems_of(folder: Path) -> list[tuple[int, str]]:
    ruleset, problems = load_ruleset(folder)
    assert ruleset is None, "a broken rule file must not load"
    return [(p.line, p.message) for p in problems]


def run_check(folder: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["rules", "check", "--rules", str(folder)])
    return result.exit_code, result.output.splitlines()


def test_the_base_file_is_valid(tmp_path):
    ruleset, problems = load_ruleset(write_rules(tmp_path, BASE))
    assert problems == []
    assert ruleset is not None and ruleset.tags == ["On Strategy", "Off Strategy"]


CASES = {
    "misspelled variable": (
        3,
        "  target_market: acount.industry == 'x'",
        "unknown variable 'acount'",
    ),
    "misspelled field": (
        4,
        "  big: opportunity.amout >= 100000",
        "unknown field 'opportunity.amout'",
    ),
    "misspelled field behind short-circuit": (
        4,
        "  big: false && opportunity.amout > 1",
        "unknown field 'opportunity.amout'",
    ),
    "bad CEL": (14, "    when: opportunity.amount >>= 3 &&", "bad CEL expression"),
    "max_open_per_rep not a number": (
        17,
        "  max_open_per_rep: two",
        "'max_open_per_rep' must be a whole number",
    ),
    "due_in_days as text": (23, '      due_in_days: "3"', "'due_in_days' must be a whole number"),
    "unknown priority": (
        24,
        "      priority: Urgent",
        "'priority' must be one of High, Normal, Low",
    ),
    "number compared with text": (4, '  big: opportunity.amount > "big"', "type error"),
    "condition giving a number": (4, "  big: opportunity.amount + 1.0", "type error"),
    "unknown key": (27, "  freeze_closed_befor: 2026-10-01", "unknown key 'freeze_closed_befor'"),
    "duplicate key": (
        4,
        "  target_market: opportunity.amount >= 1",
        "duplicate key 'target_market'",
    ),
    "template typo": (21, '      subject: "Coach {{ owner.nme }}"', "'subject'"),
    "fit in a segment": (4, '  big: fit == "On Strategy"', "'fit' is only known in warnings"),
    "fit in a fit rule": (6, '  - when: fit == "On Strategy"', "'fit' is only known in warnings"),
    "undeclared segment": (20, "      when: segment.huge", "unknown segment 'segment.huge'"),
    "later segment": (3, "  target_market: segment.big", "unknown segment 'segment.big'"),
    "last fit rule not true": (
        9,
        "  - when: opportunity.amount > 0",
        'the last fit rule must have when: "true"',
    ),
    "freeze not a date": (
        27,
        "  freeze_closed_before: soon",
        "freeze_closed_before must be a date",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_one_broken_line_is_reported_at_its_line(tmp_path, case):
    line, new, message = CASES[case]
    folder = write_rules(tmp_path / "rules", swap(line, new))
    problems = problems_of(folder)
    assert len(problems) == 1, problems
    assert problems[0][0] == line
    assert message in problems[0][1]
    code, output = run_check(folder)
    assert code == 1
    assert output == [f"{folder / 'strategy.yaml'}:{line}: {problems[0][1]}"]


def test_type_error_names_the_condition(tmp_path):
    folder = write_rules(tmp_path, swap(4, '  big: opportunity.amount > "big"'))
    [(line, message)] = problems_of(folder)
    assert line == 4 and 'opportunity.amount > "big"' in message


def test_template_typo_names_the_unknown_attribute(tmp_path):
    folder = write_rules(tmp_path, swap(21, '      subject: "Coach {{ owner.nme }}"'))
    [(line, message)] = problems_of(folder)
    assert line == 21 and "nme" in message


def test_optional_sections_may_be_omitted(tmp_path):
    text = BASE.split("target_accounts:")[0]
    text = text.replace(
        'warnings:\n  - name: late\n    when: fit == "Off Strategy" && '
        'opportunity.probability >= 60\n    message: "Late at {{ opportunity.stage }}"\n',
        "",
    )
    ruleset, problems = load_ruleset(write_rules(tmp_path, text))
    assert problems == []
    assert ruleset is not None and ruleset.warnings == ()


def test_missing_tag_is_reported_at_the_rule(tmp_path):
    folder = write_rules(tmp_path, swap(7, "    name: target"))
    assert problems_of(folder) == [(6, "missing key 'tag'")]


def test_warning_without_message_is_reported_at_the_warning(tmp_path):
    folder = write_rules(tmp_path, swap(15, "    # no message"))
    assert problems_of(folder) == [(13, "missing key 'message'")]


def test_no_fit_section_is_reported(tmp_path):
    text = "\n".join(line for i, line in enumerate(BASE.splitlines(), 1) if not 5 <= i <= 11)
    folder = write_rules(tmp_path, text + "\n")
    assert problems_of(folder) == [(1, "missing key 'fit'")]


def test_invalid_yaml_is_reported_at_its_line(tmp_path):
    folder = write_rules(tmp_path, swap(14, "    when: [unclosed"))
    [(line, message)] = problems_of(folder)
    assert message.startswith("not valid YAML")
    assert line in (14, 15)  # PyYAML marks where it noticed: the unclosed line or the next


def test_several_problems_give_one_line_each_in_line_order(tmp_path):
    text = swap(3, "  target_market: acount.industry == 'x'")
    text = swap(17, "  max_open_per_rep: two", text)
    text = swap(24, "      priority: Urgent", text)
    folder = write_rules(tmp_path, text)
    code, output = run_check(folder)
    assert code == 1
    assert [line.split(":")[1] for line in output] == ["3", "17", "24"]
    assert all(line.startswith(f"{folder / 'strategy.yaml'}:") for line in output)


def test_shipped_rules_pass_check(rules_dir):
    code, output = run_check(rules_dir)
    assert code == 0, output
    assert "valid" in output[-1]
    rulebook, problems = load_rulebook(rules_dir)
    assert problems == [] and rulebook is not None


def test_missing_rules_folder_is_a_problem(tmp_path):
    code, output = run_check(tmp_path / "nowhere")
    assert code == 1
    assert "cannot read the rule file" in output[0]


# -- the CSV files named by the rule file ---------------------------------------------------


def _csv_problems(rules_dir: Path) -> tuple[int, list[str]]:
    code, output = run_check(rules_dir)
    return code, output


def test_target_list_unknown_column(rules_dir):
    path = rules_dir / "target_accounts.csv"
    path.write_text("crm,account_id,name,region\nsandbox,ACC-1,A,EU\n")
    code, output = _csv_problems(rules_dir)
    assert code == 1
    assert output == [f"{path}:1: unknown column(s) region (expected crm,account_id)"]


def test_target_list_conflicting_duplicate(rules_dir):
    path = rules_dir / "target_accounts.csv"
    path.write_text(
        "crm,account_id,name\nsandbox,ACC-1,Alpha\nsandbox,ACC-2,Beta\nsandbox,ACC-1,Gamma\n"
    )
    code, output = _csv_problems(rules_dir)
    assert code == 1
    assert len(output) == 1
    assert output[0].startswith(f"{path}:4: account ACC-1 is listed on line 2")


def test_target_list_same_duplicate_is_fine(rules_dir):
    path = rules_dir / "target_accounts.csv"
    path.write_text("crm,account_id,name\nsandbox,ACC-1,Alpha\nsandbox,ACC-1,Alpha\n")
    code, output = _csv_problems(rules_dir)
    assert code == 0, output


def test_target_list_bad_crm(rules_dir):
    path = rules_dir / "target_accounts.csv"
    path.write_text("crm,account_id,name\nsandbox,ACC-1,Alpha\nzoho,ACC-2,Beta\n")
    code, output = _csv_problems(rules_dir)
    assert code == 1
    assert output == [f"{path}:3: crm must be one of hubspot, salesforce, sandbox; got 'zoho'"]


def test_target_list_empty_value(rules_dir):
    path = rules_dir / "target_accounts.csv"
    path.write_text("crm,account_id,name\nsandbox,,Alpha\n")
    code, output = _csv_problems(rules_dir)
    assert code == 1
    assert output == [f"{path}:2: empty account_id"]


def test_managers_conflicting_rows(rules_dir):
    path = rules_dir / "managers.csv"
    path.write_text("crm,rep,manager\nsandbox,U-004,U-001\nsandbox,U-004,U-002\n")
    code, output = _csv_problems(rules_dir)
    assert code == 1
    assert output == [f"{path}:3: rep U-004 already has manager U-001 on line 2"]


def test_managers_bad_crm_and_missing_column(rules_dir, tmp_path):
    path = rules_dir / "managers.csv"
    path.write_text("crm,rep,manager\nsandbox,U-004,U-001\n\nhubspto,U-005,U-001\n")
    code, output = _csv_problems(rules_dir)
    assert code == 1
    assert output == [f"{path}:4: crm must be one of hubspot, salesforce, sandbox; got 'hubspto'"]
    path.write_text("crm,rep\nsandbox,U-004\n")
    code, output = _csv_problems(rules_dir)
    assert code == 1
    assert output == [f"{path}:1: missing column(s) manager"]


# -- rules test ---------------------------------------------------------------------------------


def run_rule_tests(folder: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["rules", "test", "--rules", str(folder)])
    return result.exit_code, result.output


def test_shipped_rule_tests_pass(rules_dir):
    code, output = run_rule_tests(rules_dir)
    assert code == 0, output
    assert " 0 failed" in output


def test_a_wrong_expectation_fails_with_expected_and_actual(rules_dir):
    path = rules_dir / "tests" / "compensation.yaml"
    text = path.read_text()
    wrong = text.replace(
        "expect: {fit: On Strategy, comp_eligible: false}",
        "expect: {fit: On Strategy, comp_eligible: true}",
    )
    assert wrong != text
    path.write_text(wrong)
    code, output = run_rule_tests(rules_dir)
    assert code == 1
    assert (
        "FAIL " + str(path) + ":8: on-strategy deal on an account not on the list "
        "is not comp eligible"
    ) in output
    assert "comp_eligible: expected True, got False" in output
    assert " 1 failed" in output


def test_rule_tests_without_any_case_fail(tmp_path):
    folder = write_rules(tmp_path / "rules", BASE)
    code, output = run_rule_tests(folder)
    assert code == 1
    assert "0 passed, 0 failed" in output


def test_rule_tests_warnings_are_rule_names(tmp_path):
    folder = write_rules(tmp_path / "rules", BASE)
    (folder / "tests").mkdir()
    (folder / "tests" / "late.yaml").write_text(
        "- name: late off-strategy deal\n"
        "  opportunity: {probability: 80, stage: Negotiation}\n"
        "  expect: {fit: Off Strategy, warnings: [late], coaching: []}\n"
    )
    code, output = run_rule_tests(folder)
    assert code == 0, output


def test_fixture_rules_are_copies(rules_dir):
    # The shipped folder itself is never edited by these tests.
    assert rules_dir != Path(__file__).resolve().parent.parent / "rules"
    assert shutil.os.path.exists(rules_dir / "strategy.yaml")
