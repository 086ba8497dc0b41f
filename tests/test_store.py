"""The store on SQLite and PostgreSQL: audit trail, events, watermarks, coaching slots."""

from __future__ import annotations

import json
import threading

from sqlalchemy import update

from integration.domain.model import Account, Decision, Facts, Opportunity, Owner, Warning
from integration.store.database import Store
from integration.store.entries import DecisionEntry
from integration.store.models import SlotRow, TaskRow


def entry(opp: str = "OPP-1", fit: str = "On Strategy", changes=None, **options) -> DecisionEntry:
    decision = Decision(
        crm="sandbox",
        opportunity_id=opp,
        fit=fit,
        reason="because",
        fit_rule=fit,
        warnings=(Warning("w", "Careful"),),
        comp_eligible=True,
        fired=("fit:x",),
        ruleset_version="abc123",
        errors=("oops",),
    )
    facts = Facts(
        "sandbox",
        Opportunity(id=opp, name="Deal", amount=1000.0, stage="Proposal"),
        Account(id="ACC-1", name="Acme", on_target_list=True),
        Owner(id="U-4", name="Sean O'Brien", team="East", manager_id="U-1"),
    )
    return DecisionEntry(decision, facts, changes or {}, trigger="test", **options)


def test_migrate_twice_is_fine(store):
    store.migrate()
    store.migrate()
    store.ping()


def test_record_decision_and_writes(store):
    changes = {"fit": (None, "On Strategy"), "comp_eligible": ("false", True)}
    decision_id = store.record(entry(changes=changes, event_key="evt-1", target_list_version="t1"))
    row = store.latest("sandbox", "OPP-1")
    assert row.id == decision_id
    assert (row.fit, row.reason, row.warning, row.comp_eligible) == (
        "On Strategy",
        "because",
        "Careful",
        True,
    )
    assert json.loads(row.fired) == ["fit:x"] and json.loads(row.errors) == ["oops"]
    assert (row.ruleset_version, row.target_list_version, row.event_key) == (
        "abc123",
        "t1",
        "evt-1",
    )
    assert (row.owner_name, row.team, row.account_name, row.on_target_list) == (
        "Sean O'Brien",
        "East",
        "Acme",
        True,
    )
    assert row.changed is True
    writes = store.writes_for([decision_id])
    assert [(w.field, w.old_value, w.new_value, w.status) for w in writes] == [
        ("fit", "", "On Strategy", "ok"),
        ("comp_eligible", "false", "true", "ok"),
    ]


def test_failed_writes_are_recorded(store):
    decision_id = store.record(entry(changes={"fit": (None, "X")}, write_error="rejected"))
    [write] = store.writes_for([decision_id])
    assert (write.status, write.error) == ("failed", "rejected")


def test_latest_and_history(store):
    first = store.record(entry(fit="Off Strategy"))
    second = store.record(entry(fit="On Strategy"))
    store.record(entry(opp="OPP-2", fit="Off Strategy"))
    assert store.latest("sandbox", "OPP-1").id == second
    assert [r.id for r in store.history("sandbox", "OPP-1")] == [second, first]
    assert [r.id for r in store.history("sandbox", "OPP-1", limit=1)] == [second]
    assert store.latest("sandbox", "OPP-404") is None
    assert store.latest("hubspot", "OPP-1") is None
    latest = {r.opportunity_id: r.fit for r in store.latest_decisions()}
    assert latest == {"OPP-1": "On Strategy", "OPP-2": "Off Strategy"}
    assert list(store.latest_decisions("hubspot")) == []
    assert len(list(store.all_decisions())) == 3


def test_unseen_events_and_mark_events_are_idempotent(store):
    assert store.unseen_events("sandbox", []) == set()
    assert store.unseen_events("sandbox", ["a", "b"]) == {"a", "b"}
    store.mark_events("sandbox", {"a": "OPP-1"})
    store.mark_events("sandbox", {"a": "OPP-1", "b": "OPP-2"})
    store.mark_events("sandbox", {"a": "OPP-1"})
    assert store.unseen_events("sandbox", ["a", "b", "c"]) == {"c"}
    assert store.unseen_events("hubspot", ["a"]) == {"a"}


def test_watermarks(store):
    assert store.watermark("sandbox", "reconciled-at") == ""
    store.set_watermark("sandbox", "reconciled-at", "2026-01-01T00:00:00")
    store.set_watermark("sandbox", "reconciled-at", "2026-02-01T00:00:00")
    assert store.watermark("sandbox", "reconciled-at") == "2026-02-01T00:00:00"
    assert store.watermark("hubspot", "reconciled-at") == ""


# -- coaching tasks -------------------------------------------------------------------------


def task(
    opp: str = "OPP-1", rule: str = "big", rep: str = "U-4", status: str = "queued"
) -> TaskRow:
    return TaskRow(
        crm="sandbox",
        opportunity_id=opp,
        rule=rule,
        rep_id=rep,
        assignee_id="U-1",
        status=status,
        subject="s",
        body="b",
    )


def _queued(tasks, n, rep="U-4"):
    return [tasks.add(task(opp=f"OPP-{rep}-{i}", rep=rep)) for i in range(n)]


def test_starting_takes_a_slot_and_ending_gives_it_back(store):
    tasks = store.tasks
    rows = _queued(tasks, 3)
    started = [tasks.move(r, "queued", "starting", cap=2) for r in rows]
    assert started == [True, True, False]  # the third finds the rep at the cap
    assert tasks.open_count("sandbox", "U-4") == 2
    assert tasks.move(rows[0], "starting", "open", task_id="T-1")
    assert tasks.open_count("sandbox", "U-4") == 2  # open still holds its slot
    assert tasks.move(rows[0], "open", "completed")
    assert not tasks.move(rows[0], "open", "completed")  # already left: nothing happens
    assert tasks.open_count("sandbox", "U-4") == 1  # released once, not twice
    assert tasks.move(rows[2], "queued", "starting", cap=2)
    assert tasks.move(rows[2], "starting", "queued")
    assert tasks.open_count("sandbox", "U-4") == 1
    assert [r.status for r in tasks.all_tasks()] == ["completed", "starting", "queued"]
    assert tasks.mismatched() == []


def test_moves_never_exceed_the_cap_or_double_release_under_concurrency(store_url, store):
    """Eight threads with their own connections race to start and to end the same rows."""
    cap, workers = 3, 8
    rows = _queued(store.tasks, 10, rep="U-race")
    start, middle = threading.Barrier(workers), threading.Barrier(workers)
    errors: list[BaseException] = []
    started: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        own = Store(store_url)
        try:
            start.wait()
            for row in rows:
                if own.tasks.move(row, "queued", "starting", cap=cap):
                    with lock:
                        started.append(row.id)
            middle.wait()
            for row in rows:
                own.tasks.move(row, "starting", "closed")
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            own.engine.dispose()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(started) == len(set(started)) == cap  # each row started once, cap in all
    assert store.tasks.open_count("sandbox", "U-race") == 0  # each slot released once
    assert store.tasks.mismatched() == []


def test_claims_go_in_together_and_one_another_worker_made_first_is_skipped(store):
    tasks = store.tasks
    theirs = tasks.add(task(opp="OPP-2"))  # another worker claimed OPP-2 first
    tasks.add_many([task(opp="OPP-1"), task(opp="OPP-2"), task(opp="OPP-1", rule="other")])
    rows = tasks.all_tasks()
    assert sorted((r.opportunity_id, r.rule) for r in rows) == [
        ("OPP-1", "big"),
        ("OPP-1", "other"),
        ("OPP-2", "big"),
    ]
    assert [r.id for r in rows if r.opportunity_id == "OPP-2"] == [theirs.id]
    assert {(r.status, r.due_in_days, r.attempts, r.note) for r in rows} == {("queued", 3, 0, "")}


def test_queued_rows_move_together_except_those_another_worker_moved_first(store):
    tasks = store.tasks
    rows = _queued(tasks, 3)
    assert tasks.move(rows[1], "queued", "starting", cap=3)  # another worker started it
    moved = tasks.move_queued(rows, "dropped", "beyond the queue bound")
    assert sorted(moved) == sorted([rows[0].id, rows[2].id])
    assert [r.status for r in tasks.all_tasks()] == ["dropped", "starting", "dropped"]
    assert tasks.open_count("sandbox", "U-4") == 1  # no slot given back for a queued row
    assert tasks.mismatched() == []


def test_one_live_task_per_opportunity_and_rule(store):
    tasks = store.tasks
    first = tasks.add(task())
    assert first is not None and first.id
    assert tasks.add(task()) is None
    assert tasks.add(task(status="open")) is None
    assert tasks.add(task(status="starting")) is None
    assert tasks.add(task(rule="other")) is not None
    assert tasks.add(task(opp="OPP-2")) is not None
    assert tasks.move(first, "queued", "closed", note="done")
    again = tasks.add(task())
    assert again is not None and again.id != first.id
    live = tasks.live_for("sandbox", ["OPP-1"])
    assert sorted((r.rule, r.status) for r in live) == [("big", "queued"), ("other", "queued")]


def test_recount_rebuilds_slots_from_occupying_rows(store):
    tasks = store.tasks
    for row in _queued(tasks, 2):
        assert tasks.move(row, "queued", "starting", cap=5)
    tasks.add(task(opp="OPP-3"))  # queued: not counted
    with store.session.begin() as session:  # a counter drifted by an older version
        session.execute(update(SlotRow).values(open_count=7))
        session.add(SlotRow(crm="sandbox", rep_id="U-gone", open_count=1))
    assert sorted(tasks.mismatched()) == [
        ("sandbox", "U-4", 7, 2),
        ("sandbox", "U-gone", 1, 0),
    ]
    assert tasks.recount("sandbox") == 2
    assert tasks.open_count("sandbox", "U-4") == 2
    assert tasks.open_count("sandbox", "U-gone") == 0
    assert tasks.mismatched() == []


def test_queued_tasks_come_most_important_first(store):
    tasks = store.tasks
    for opp, score in (("OPP-1", 10.0), ("OPP-2", 500.0), ("OPP-3", 50.0)):
        row = task(opp=opp)
        row.score = score
        tasks.add(row)
    ordered = [r.opportunity_id for r in tasks.for_reps("sandbox", ["U-4"], "queued")]
    assert ordered == ["OPP-2", "OPP-3", "OPP-1"]
    summary = store.tasks.summary()
    assert summary == [("sandbox", "U-1", "U-4", "queued", 3)]


def test_a_page_of_decisions_keeps_each_decision_with_its_own_writes(store):
    changes = {"OPP-1": {"fit": (None, "On Strategy")}, "OPP-2": {"fit": ("a", "b")}}
    ids = store.record_many([entry(o, changes=changes[o]) for o in ("OPP-2", "OPP-1")])
    again = store.record_many([entry("OPP-3"), entry("OPP-3", fit="Off Strategy")])
    assert len(set(ids + again)) == 4
    assert [store.latest("sandbox", o).id for o in ("OPP-2", "OPP-1")] == ids
    by_id = {w.decision_id: (w.opportunity_id, w.new_value) for w in store.writes_for(ids)}
    assert by_id == {ids[0]: ("OPP-2", "b"), ids[1]: ("OPP-1", "On Strategy")}
    assert store.latest("sandbox", "OPP-3").fit == "Off Strategy"
