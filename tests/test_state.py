"""The current-state table: one row per opportunity, replaced by every decision."""

from __future__ import annotations

import json

from test_store import entry

from integration.domain.model import Facts
from integration.pipeline.processor import Processor


def test_each_decision_replaces_the_opportunitys_state(store):
    store.record_many([entry("OPP-1", fit="Off Strategy"), entry("OPP-2")])
    store.record(entry("OPP-1", fit="On Strategy"))
    states = {s.opportunity_id: s for s in store.states("sandbox")}
    assert set(states) == {"OPP-1", "OPP-2"}
    assert states["OPP-1"].fit == "On Strategy"
    assert json.loads(states["OPP-1"].warnings) == ["w"]
    assert (states["OPP-1"].owner_name, states["OPP-1"].team) == ("Sean O'Brien", "East")


def test_a_batch_deciding_one_opportunity_twice_keeps_the_last(store):
    store.record_many([entry("OPP-1", fit="Off Strategy"), entry("OPP-1", fit="On Strategy")])
    [state] = store.states()
    assert state.fit == "On Strategy"


def test_facts_round_trip_through_the_state(store):
    recorded = entry("OPP-7")
    store.record(recorded)
    state = store.state("sandbox", "OPP-7")
    assert Facts.from_dict(json.loads(state.facts)) == recorded.facts


def test_forgotten_opportunities_leave_the_state(store):
    store.record_many([entry("OPP-1"), entry("OPP-2")])
    assert store.forget_states("sandbox", ["OPP-1", "OPP-9"]) == 1
    assert [s.opportunity_id for s in store.states()] == ["OPP-2"]


def test_the_pipeline_keeps_raw_facts_and_what_the_crm_holds(runtime, sandbox):
    sandbox.add_opportunity("OPP-1", name="One", amount=10)
    Processor(sandbox, runtime.rulebook(), runtime.store).process_ids(["OPP-1"])
    state = runtime.store.state("sandbox", "OPP-1")
    record = sandbox.read_opportunities(["OPP-1"])[0]
    assert json.loads(state.crm_values) == {
        "fit": record.current["fit"],
        "reason": record.current["reason"],
        "warning": record.current.get("warning") or None,
        "comp_eligible": record.current["comp_eligible"],
    }
    facts = Facts.from_dict(json.loads(state.facts))
    assert facts.opportunity.name == "One" and facts.opportunity.amount == 10
