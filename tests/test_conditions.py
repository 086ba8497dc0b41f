"""CEL conditions, directly: names checked wherever they stand, results must be true/false."""

from __future__ import annotations

import cel
import pytest

from integration.engine.conditions import Scope, compile_condition, unknown_names
from integration.engine.variables import sample_variables

PLAIN = Scope(segments=("retail",))


def _context(**extra) -> cel.Context:
    return cel.Context({**sample_variables(), "segment": {"retail": True}, **extra})


def test_a_known_condition_compiles_and_holds():
    condition, problems = compile_condition("opportunity.amount >= 100000", 7, PLAIN)
    assert problems == [] and condition.line == 7
    assert condition.holds(_context()) is True


def test_an_unknown_name_is_found_even_where_evaluation_never_reaches():
    condition, problems = compile_condition("false && acount.industry == 'Retail'", 1, PLAIN)
    assert condition is None
    assert problems[0].startswith("unknown variable 'acount' (known: account, crm,")


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("opportunity.amout > 1", "unknown field 'opportunity.amout' (known: id, name,"),
        ("segment.healthcare", "unknown segment 'segment.healthcare' (known: retail)"),
        ("fit == 'On Strategy'", "'fit' is only known in warnings, coaching and compensation"),
    ],
)
def test_unknown_fields_segments_and_fit_outside_its_sections(source, problem):
    [found] = unknown_names(source, PLAIN)
    assert found.startswith(problem)


def test_fit_is_known_where_the_scope_allows_it():
    assert unknown_names("fit == 'On Strategy'", Scope(segments=(), fit=True)) == []


def test_names_bound_by_macros_are_not_unknown():
    assert unknown_names("products.exists(p, p.startsWith('Support'))", PLAIN) == []


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("opportunity.amount >", "bad CEL expression: "),
        (42, "a condition must be a CEL expression in text; got 42"),
        ("  ", "a condition must be a CEL expression in text; got '  '"),
    ],
)
def test_what_is_not_a_condition_says_why(source, problem):
    condition, [found] = compile_condition(source, 1, PLAIN)
    assert condition is None and found.startswith(problem)


def test_a_yaml_boolean_is_a_constant_condition():
    condition, _ = compile_condition(True, 1, PLAIN)
    assert condition.source == "true" and condition.holds(_context()) is True


def test_a_condition_that_is_not_true_or_false_is_an_error():
    condition, _ = compile_condition("opportunity.amount", 1, PLAIN)
    with pytest.raises(TypeError, match="condition gave float, not true/false"):
        condition.holds(_context())
