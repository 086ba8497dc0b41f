"""``plan_fields``: write only what changed; "empty is empty"; frozen deals stay untouched."""

from __future__ import annotations

import pytest

from integration.domain.model import Decision, Warning
from integration.pipeline.planner import normalized, plan_fields, reported_values


def decision(**changes) -> Decision:
    values = dict(
        crm="sandbox",
        opportunity_id="OPP-1",
        fit="Off Strategy",
        reason="Outside",
        fit_rule="Off Strategy",
        warnings=(),
        comp_eligible=False,
    )
    values.update(changes)
    return Decision(**values)


IN_STEP = {"fit": "Off Strategy", "reason": "Outside", "warning": "", "comp_eligible": False}


def test_nothing_planned_when_the_crm_already_holds_the_values():
    assert plan_fields(decision(), dict(IN_STEP)) == {}


def test_a_never_evaluated_deal_gets_every_field_explicitly():
    changes = plan_fields(decision(), {})
    assert changes == {
        "fit": (None, "Off Strategy"),
        "reason": (None, "Outside"),
        "comp_eligible": (None, False),
    }
    # The warning is "" and absent is "": nothing to write for it.


def test_only_changed_fields_are_planned():
    current = dict(IN_STEP, reason="Old reason")
    assert plan_fields(decision(), current) == {"reason": ("Old reason", "Outside")}
    warned = decision(warnings=(Warning("w", "Careful"),), comp_eligible=True)
    assert plan_fields(warned, dict(IN_STEP)) == {
        "warning": ("", "Careful"),
        "comp_eligible": (False, True),
    }


def test_clearing_a_warning_is_planned():
    assert plan_fields(decision(), dict(IN_STEP, warning="Old warning")) == {
        "warning": ("Old warning", "")
    }


@pytest.mark.parametrize("empty", ["", None, "absent"])
def test_empty_string_none_and_absent_are_equal(empty):
    current = dict(IN_STEP)
    if empty == "absent":
        del current["warning"]
    else:
        current["warning"] = empty
    assert plan_fields(decision(), current) == {}


@pytest.mark.parametrize(
    ("stored", "desired", "changes"),
    [
        ("true", True, False),
        ("false", False, False),
        ("TRUE", True, False),
        ("False", False, False),
        ("true", False, True),
        ("false", True, True),
        (True, True, False),
        (False, True, True),
    ],
)
def test_boolean_strings_compare_with_booleans(stored, desired, changes):
    current = dict(IN_STEP, comp_eligible=stored)
    planned = plan_fields(decision(comp_eligible=desired), current)
    assert ("comp_eligible" in planned) is changes


def test_a_false_flag_is_written_when_the_crm_has_none():
    # "An unset flag is never left to mean false."
    planned = plan_fields(decision(comp_eligible=False), dict(IN_STEP, comp_eligible=None))
    assert planned == {"comp_eligible": (None, False)}


def test_normalized():
    assert normalized("") is None and normalized(None) is None
    assert normalized("  x  ") == "x"
    assert normalized("   ") is None
    assert normalized("true") is True and normalized("FALSE") is False
    assert normalized(0) == 0


def test_frozen_deals_are_never_written():
    frozen = decision(frozen=True, fit="On Strategy", comp_eligible=True)
    assert plan_fields(frozen, {}) == {}
    assert plan_fields(frozen, {"fit": "Off Strategy", "comp_eligible": "false"}) == {}


def test_reported_values_of_a_frozen_deal_are_the_crm_values():
    frozen = decision(frozen=True, fit="On Strategy", reason="New", comp_eligible=True)
    current = {"fit": "Off Strategy", "reason": "Old", "warning": "", "comp_eligible": False}
    reported = reported_values(frozen, current)
    assert reported["fit"] == "Off Strategy"
    assert reported["reason"] == "Old"
    assert reported["comp_eligible"] is False


def test_reported_values_of_a_frozen_deal_fall_back_to_the_decision_when_the_crm_is_empty():
    frozen = decision(frozen=True, fit="On Strategy", reason="New", comp_eligible=True)
    reported = reported_values(frozen, {"fit": "", "reason": None})
    assert reported == {"fit": "On Strategy", "reason": "New", "warning": "", "comp_eligible": True}


def test_reported_values_of_a_live_deal_are_the_decision():
    live = decision(fit="On Strategy", comp_eligible=True)
    assert reported_values(live, {"fit": "Off Strategy"}) == live.desired()
