"""``rules preview`` gives the right numbers: checked against a pipeline whose answers
are known, and against what the publish that follows actually does in the CRM."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import func, select

from connectors.base import OpportunityQuery
from connectors.sandbox_seed import seed
from integration.domain.model import Facts
from integration.engine.evaluate import evaluate
from integration.engine.rulebook import read_folder, rulebook_from_files
from integration.jobs.publish import publish_files, queue_reevaluation
from integration.pipeline.preview import ChangeSpool, run_preview
from integration.pipeline.sweep import SweepPlan, run_sweep
from integration.store.models import TaskRow

TODAY = date(2026, 11, 26)


@pytest.fixture
def live(runtime, sandbox):
    """A seeded sandbox pipeline, fully decided under the shipped rules."""
    seed(sandbox, accounts=120, opportunities=300, today=TODAY)
    runtime.today = lambda: TODAY
    run_sweep(runtime, "sandbox", SweepPlan("all", OpportunityQuery()), trigger="test")
    return runtime


def _snapshot(sandbox):
    return {
        r.id: dict(r.current)
        for page in sandbox.iter_opportunities(OpportunityQuery())
        for r in page
    }


def _edit(rules_dir, old: str, new: str) -> dict[str, bytes]:
    path = rules_dir / "strategy.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return read_folder(rules_dir)


def _preview(runtime, files, today=TODAY):
    draft, problems = rulebook_from_files(files)
    assert problems == []
    spool = ChangeSpool()
    result = run_preview(runtime.store, runtime.rulebook(), draft, today, spool)
    return result, spool


def _publish(runtime, files, spool):
    publication = publish_files(runtime, files, who="test")
    queue_reevaluation(runtime, spool, publication, ["sandbox"])


def _tasks(runtime) -> Counter:
    """Coaching tasks in the store by status (open, queued, closed, ...)."""
    query = select(TaskRow.status, func.count()).group_by(TaskRow.status)
    with runtime.store.session() as session:
        return Counter(dict(session.execute(query).all()))


def test_the_same_rules_preview_no_change(live, rules_dir):
    result, _ = _preview(live, read_folder(rules_dir))
    summary = result.summary()
    assert result.opportunities == 300 and result.changed == 0 and result.reevaluate == 0
    assert summary["share"]["before"] == summary["share"]["after"] > 0
    assert summary["tag_changes"] == [] and summary["warnings"] == {"added": {}, "removed": {}}
    assert summary["coaching"]["create"] == 0 and summary["coaching"]["close"] == 0
    assert summary["draft_version"] == summary["live_version"]


def test_preview_numbers_are_what_the_publish_then_does(live, sandbox, rules_dir):
    files = _edit(rules_dir, "account.employees >= 1000", "account.employees >= 200")
    result, spool = _preview(live, files)
    summary = result.summary()
    before = _snapshot(sandbox)
    tasks_before = _tasks(live)
    closed_open = _closing_open(live, spool)
    _publish(live, files, spool)
    after = _snapshot(sandbox)

    changed = {opp for opp in after if after[opp] != before[opp]}
    assert result.changed == len(changed) > 0
    listed = {change.opportunity_id for change in spool if change.fields}
    assert listed == changed
    moves = Counter(
        (before[o]["fit"] or "", after[o]["fit"])
        for o in changed
        if before[o]["fit"] != after[o]["fit"]
    )
    assert {(t["from"], t["to"]): t["count"] for t in summary["tag_changes"]} == moves
    to_true = sum(
        1 for o in changed if after[o]["comp_eligible"] and not before[o]["comp_eligible"]
    )
    assert summary["comp_changes"]["to_true"] == to_true
    assert summary["share"]["after"] > summary["share"]["before"]
    coaching = summary["coaching"]
    tasks = _tasks(live)
    assert coaching["close"] > 0 and tasks["closed"] - tasks_before["closed"] == coaching["close"]
    assert tasks["open"] == tasks_before["open"] - closed_open + coaching["create"]
    assert tasks["queued"] == coaching["queue"]
    again, _ = _preview(live, files)
    assert again.changed == 0 and again.summary()["coaching"]["create"] == 0


def _closing_open(runtime, spool) -> int:
    """Open tasks of listed deals whose rule the draft no longer asks for (counted by hand)."""
    draft = rulebook_from_files(read_folder(runtime.settings.rules_dir))[0]
    wanted = {}
    for row in runtime.store.states():
        facts = draft.managers.resolve(draft.targets.resolve(_facts_of(row)))
        decision = evaluate(facts, draft.ruleset, TODAY)
        wanted[row.opportunity_id] = {task.rule for task in decision.coaching}
    del spool
    with runtime.store.session() as session:
        rows = session.scalars(select(TaskRow).where(TaskRow.status == "open")).all()
    return sum(1 for r in rows if r.rule not in wanted.get(r.opportunity_id, set()))


def test_warnings_added_and_removed_by_rule(live, rules_dir):
    files = _edit(
        rules_dir,
        "  - name: target-market-traditional-only\n",
        "  - name: past-close-date\n"
        '    when: opportunity.close_date != "" && opportunity.close_date < today && '
        "segment.open_deal\n"
        '    message: "Close date {{ opportunity.close_date }} has passed"\n'
        "  - name: target-market-traditional-only-renamed\n",
    )
    later = date(2027, 3, 1)  # a day by which some open deals' close dates have passed
    result, _ = _preview(live, files, later)
    added, removed = result.warnings_added, result.warnings_removed
    facts = [_facts_of(row) for row in live.store.states("sandbox")]
    past = sum(
        1
        for f in facts
        if f.opportunity.close_date
        and f.opportunity.close_date < later.isoformat()
        and not f.opportunity.is_closed
        and not _frozen(live, f)
    )
    assert added["past-close-date"] == past > 0
    assert (
        added["target-market-traditional-only-renamed"] == removed["target-market-traditional-only"]
    )
    assert set(removed) == {"target-market-traditional-only"}


def _facts_of(row):
    return Facts.from_dict(json.loads(row.facts))


def _frozen(runtime, facts) -> bool:
    freeze = runtime.rulebook().ruleset.freeze_closed_before
    return facts.opportunity.is_closed and facts.opportunity.close_date < freeze.isoformat()


def test_frozen_deals_are_never_listed(live, sandbox, rules_dir):
    files = _edit(
        rules_dir, 'when: "true"\n    tag: Off Strategy', 'when: "true"\n    tag: Unsorted'
    )
    result, spool = _preview(live, files)
    frozen = {row.opportunity_id for row in live.store.states() if row.frozen}
    assert frozen and result.frozen == len(frozen)
    listed = {change.opportunity_id for change in spool}
    assert listed and not listed & frozen
    assert result.changed == result.opportunities - len(frozen) - _not_moving(live, spool)


def _not_moving(runtime, spool) -> int:
    """Unfrozen deals whose tag stays (they were not decided by the renamed catch-all)."""
    listed = {change.opportunity_id for change in spool if change.fields}
    return sum(
        1 for row in runtime.store.states() if not row.frozen and row.opportunity_id not in listed
    )


def test_lowering_the_cap_creates_nothing_and_queues_the_new_tasks(live, rules_dir):
    before = _tasks(live)
    files = _edit(rules_dir, "max_open_per_rep: 2", "max_open_per_rep: 1")
    result, spool = _preview(live, files)
    coaching = result.summary()["coaching"]
    with live.store.session() as session:
        reps = set(session.scalars(select(TaskRow.rep_id).where(TaskRow.status == "open")))
    assert coaching["create"] == 0 and coaching["close"] == 0
    assert coaching["queue"] == before["queued"]
    assert coaching["open_now"] == before["open"] and coaching["over_cap"] == len(reps)
    _publish(live, files, spool)
    assert _tasks(live) == before  # nothing created under the lower cap


def test_a_new_coaching_rule_queues_within_the_bound_and_drops_the_rest(live, sandbox, rules_dir):
    files = _edit(
        rules_dir,
        "    - name: late-stage-off-strategy\n",
        "    - name: any-open-deal\n"
        "      when: segment.open_deal\n"
        '      subject: "Check {{ opportunity.name }}"\n'
        '      body: "A check-in"\n'
        "    - name: late-stage-off-strategy\n",
    )
    before = _tasks(live)
    result, spool = _preview(live, files)
    coaching = result.summary()["coaching"]
    bound = live.rulebook().ruleset.queue_per_rep
    reps = {row.owner_id for row in live.store.states()}
    assert coaching["dropped"] > 0 and coaching["queue"] <= bound * len(reps)
    _publish(live, files, spool)
    after = _tasks(live)
    assert after["open"] == before["open"] + coaching["create"]
    assert after["queued"] == coaching["queue"]
