"""The coaching decisions as pure functions: no database, no CRM."""

from __future__ import annotations

from integration.pipeline.coaching_plan import (
    Held,
    Wanted,
    ended_in_crm,
    plan_batch,
    plan_queue,
    ranked,
)


def held(id_: int, opp: str, status: str = "queued", score: float = 0.0, **kw) -> Held:
    return Held(id_, opp, kw.pop("rule", "big"), kw.pop("rep", "U-1"), status, score=score, **kw)


def test_new_wanted_tasks_are_claimed_once():
    wanted = [Wanted("A", "big", "U-1"), Wanted("A", "big", "U-1"), Wanted("B", "big", "U-1")]
    result = plan_batch(["A", "B"], wanted, [], [])
    assert result.claim == (Wanted("A", "big", "U-1"), Wanted("B", "big", "U-1"))
    assert result.close == ()


def test_live_and_handled_tasks_are_not_claimed_again():
    wanted = [Wanted("A", "big", "U-1"), Wanted("B", "big", "U-1"), Wanted("C", "big", "U-1")]
    live = [held(1, "A", "open", task_id="T-1"), held(2, "B", "starting")]
    result = plan_batch(["A", "B", "C"], wanted, live, [("C", "big")])
    assert result.claim == ()  # A open, B being created, C completed by its manager


def test_unwanted_open_and_queued_tasks_close_but_starting_ones_are_left_to_their_creator():
    live = [
        held(1, "A", "open", task_id="T-1"),
        held(2, "B", "queued"),
        held(3, "C", "starting"),
        held(4, "D", "queued"),  # not in this batch: not judged
        held(5, "A", "queued", rule="other"),  # still wanted
    ]
    result = plan_batch(["A", "B", "C"], [Wanted("A", "other", "U-1")], live, [])
    assert [h.id for h in result.close] == [1, 2]


def test_tasks_completed_or_gone_in_the_crm_end():
    rows = [held(1, "A", "open", task_id="T-1"), held(2, "B", "open", task_id="T-2")]
    rows.append(held(3, "C", "open", task_id="T-3"))
    ended = ended_in_crm(rows, {"T-1": "completed", "T-2": "open"})
    assert [(h.id, state) for h, state in ended] == [(1, "completed"), (3, "deleted")]


def test_queue_starts_the_most_important_into_free_slots_and_drops_beyond_the_bound():
    queued = [
        held(1, "A", score=10),
        held(2, "B", score=500),
        held(3, "C", score=50, close_date="2027-03-01"),
        held(4, "D", score=50, close_date="2027-01-01"),
        held(5, "E", score=1),
        held(6, "F", score=5),
    ]
    assert [h.opportunity_id for h in ranked(queued)] == ["B", "D", "C", "A", "F", "E"]
    moves = plan_queue(queued, occupied=1, cap=2, bound=3)
    assert [h.opportunity_id for h in moves.start] == ["B"]
    assert [h.opportunity_id for h in moves.drop] == ["F", "E"]  # D, C, A keep waiting


def test_queue_at_the_cap_starts_nothing_and_keeps_the_bound():
    queued = [held(i, f"O{i}", score=float(i)) for i in range(1, 6)]
    moves = plan_queue(queued, occupied=2, cap=2, bound=3)
    assert moves.start == ()
    assert [h.id for h in moves.drop] == [2, 1]
    over = plan_queue(queued, occupied=5, cap=2, bound=0)  # a counter above the cap
    assert over.start == () and len(over.drop) == 5
