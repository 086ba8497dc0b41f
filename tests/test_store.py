"""The store on SQLite and PostgreSQL: audit trail, events, watermarks, coaching slots."""

from __future__ import annotations

import json
import threading

from integration.domain.model import Account, Decision, Facts, Opportunity, Owner, Warning
from integration.store.database import DecisionEntry, Store
from integration.store.models import TaskRow


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


def test_reserve_release_and_cap(store):
    tasks = store.tasks
    assert [tasks.reserve_slot("sandbox", "U-4", 2) for _ in range(3)] == [True, True, False]
    assert tasks.open_count("sandbox", "U-4") == 2
    tasks.release_slot("sandbox", "U-4")
    assert tasks.open_count("sandbox", "U-4") == 1
    assert tasks.reserve_slot("sandbox", "U-4", 2) is True
    assert tasks.reserve_slot("sandbox", "U-5", 0) is False
    tasks.release_slot("sandbox", "U-5")
    assert tasks.open_count("sandbox", "U-5") == 0  # never negative


def test_reserve_slot_never_exceeds_the_cap_under_concurrency(store_url, store):
    cap, workers, tries = 3, 8, 5
    taken: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work() -> None:
        own = Store(store_url)
        try:
            start.wait()
            for _ in range(tries):
                result = own.tasks.reserve_slot("sandbox", "U-race", cap)
                with lock:
                    taken.append(result)
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
    assert len(taken) == workers * tries
    assert taken.count(True) == cap
    assert store.tasks.open_count("sandbox", "U-race") == cap


def test_one_live_task_per_opportunity_and_rule(store):
    tasks = store.tasks
    first = tasks.add(task())
    assert first is not None and first.id
    assert tasks.add(task()) is None
    assert tasks.add(task(status="open")) is None
    assert tasks.add(task(rule="other")) is not None
    assert tasks.add(task(opp="OPP-2")) is not None
    tasks.set_status(first.id, "closed", note="done")
    again = tasks.add(task())
    assert again is not None and again.id != first.id
    live = tasks.live_for("sandbox", ["OPP-1"])
    assert sorted((r.rule, r.status) for r in live) == [("big", "queued"), ("other", "queued")]


def test_recount_rebuilds_slots_from_open_tasks(store):
    tasks = store.tasks
    for opp in ("OPP-1", "OPP-2"):
        row = tasks.add(task(opp=opp))
        tasks.set_status(row.id, "open", task_id=f"T-{opp}")
    tasks.add(task(opp="OPP-3"))  # queued: not counted
    for _ in range(5):
        tasks.reserve_slot("sandbox", "U-4", 10)  # drifted counter
    tasks.reserve_slot("sandbox", "U-gone", 10)
    tasks.recount("sandbox")
    assert tasks.open_count("sandbox", "U-4") == 2
    assert tasks.open_count("sandbox", "U-gone") == 0
    opened = tasks.for_reps("sandbox", ["U-4"], "open")
    assert sorted(r.task_id for r in opened) == ["T-OPP-1", "T-OPP-2"]


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
