"""Which coaching tasks to claim, close, start and drop: pure functions over plain data.

The coaching pipeline (:mod:`integration.pipeline.coaching`) reads the store
and the CRM, asks these functions what should happen, and then carries each
step out as a conditional update that may lose to another worker. Keeping the
decisions here means they are tested without a database or a CRM, and the I/O
around them cannot change what is decided.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Wanted:
    """A coaching task a decision asks for."""

    opportunity_id: str
    rule: str
    rep_id: str


@dataclass(frozen=True)
class Held:
    """A task row as the planner sees it."""

    id: int
    opportunity_id: str
    rule: str
    rep_id: str
    status: str
    task_id: str = ""
    score: float = 0.0
    close_date: str = ""

    @property
    def pair(self) -> tuple[str, str]:
        return self.opportunity_id, self.rule


@dataclass(frozen=True)
class BatchPlan:
    """For one batch of decisions: live tasks to close and new tasks to claim (queued)."""

    close: tuple[Held, ...]
    claim: tuple[Wanted, ...]


def plan_batch(
    looked_at: Iterable[str],
    wanted: Sequence[Wanted],
    live: Sequence[Held],
    handled: Iterable[tuple[str, str]],
) -> BatchPlan:
    """Close every live task of ``looked_at`` deals no longer wanted; claim the new ones.

    A task being created (``starting``) is left alone: its creator finishes it
    and the next evaluation closes it if it is still unwanted. A task a manager
    completed or deleted (``handled``) is not asked for again.
    """
    seen = set(looked_at)
    want = {(w.opportunity_id, w.rule) for w in wanted}
    close = tuple(
        r
        for r in live
        if r.opportunity_id in seen and r.pair not in want and r.status in ("open", "queued")
    )
    have = {r.pair for r in live} | set(handled)
    claim: dict[tuple[str, str], Wanted] = {}
    for w in wanted:
        if (w.opportunity_id, w.rule) not in have:
            claim.setdefault((w.opportunity_id, w.rule), w)
    return BatchPlan(close, tuple(claim.values()))


def ended_in_crm(open_tasks: Sequence[Held], states: Mapping[str, str]) -> list[tuple[Held, str]]:
    """Open tasks a manager completed or deleted in the CRM, with that state.

    A task the CRM does not return is gone: ``deleted``.
    """
    ended = []
    for row in open_tasks:
        state = states.get(row.task_id, "deleted")
        if state in ("completed", "deleted"):
            ended.append((row, state))
    return ended


def ranked(queued: Iterable[Held]) -> list[Held]:
    """Most important first: the larger weighted amount, then the nearer close, then age."""
    return sorted(queued, key=lambda r: (-r.score, r.close_date or "9999-12-31", r.id))


@dataclass(frozen=True)
class QueuePlan:
    """For one rep: queued tasks to start now, and queued tasks beyond the bound to drop."""

    start: tuple[Held, ...]
    drop: tuple[Held, ...]


def plan_queue(queued: Iterable[Held], occupied: int, cap: int, bound: int) -> QueuePlan:
    """Start the most important queued tasks while a slot is free; keep ``bound`` waiting.

    ``occupied`` is the rep's open and starting tasks. The tasks that neither
    start nor fit in the queue are dropped; they are claimed again, and ranked
    afresh, when their deal is next evaluated.
    """
    order = ranked(queued)
    free = max(cap - occupied, 0)
    start, rest = order[:free], order[free:]
    return QueuePlan(tuple(start), tuple(rest[max(bound, 0) :]))
