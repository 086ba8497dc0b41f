"""Coaching tasks in step with decisions: claim, queue, start, close, adopt.

For a batch of decisions this:

1. notices tasks a manager completed or deleted in the CRM (one batch read of
   the involved reps' open tasks) and frees their slots;
2. closes, with a comment, the live tasks whose deal no longer meets the rule;
3. claims each wanted (opportunity, rule) as a queued row (a unique index makes
   a duplicate impossible under redelivery or concurrency);
4. starts the most important queued tasks while the rep has a free slot, and
   drops those beyond the queue bound.

What to do is decided by the pure functions of
:mod:`integration.pipeline.coaching_plan`; every step here is a conditional
update (:meth:`TaskStore.move`) that names the status it leaves, and only the
worker whose update changed the row acts on it. A task is created in the CRM
only by the worker that moved its row to ``starting`` (which took the slot);
on any failure the row goes back to the queue and the slot with it. Each task
carries a marker (its key) that the CRM can be searched for, and a row whose
creation was tried before is looked up first: a create that committed in the
CRM but was never confirmed is adopted, not repeated.

The service only ever counts, edits or closes tasks it created (their ids are in
the store).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from connectors.base import Connector, ConnectorError, TaskClose, WriteResult
from integration.domain.model import Decision, Facts
from integration.pipeline import coaching_plan as plan
from integration.pipeline.planner import assignee, close_reason, importance, task_spec
from integration.store.models import TaskRow
from integration.store.tasks import TaskStore

log = logging.getLogger(__name__)

#: A task still ``starting`` after this many seconds lost its creator (a worker
#: died mid-creation): it is adopted from the CRM by its marker, or queued again.
STALE_AFTER = 120.0


@dataclass
class CoachingOutcome:
    created: list[str] = field(default_factory=list)  # "opp:rule"
    queued: int = 0  # still waiting for a free slot, among the reps looked at
    closed: list[str] = field(default_factory=list)
    noticed: list[str] = field(default_factory=list)  # completed/deleted in the CRM
    failed: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # beyond the queue bound
    retry: bool = False


def held(row: TaskRow) -> plan.Held:
    return plan.Held(
        row.id,
        row.opportunity_id,
        row.rule,
        row.rep_id,
        row.status,
        row.task_id,
        row.score,
        row.close_date,
    )


def _pair(row: TaskRow | plan.Held) -> str:
    return f"{row.opportunity_id}:{row.rule}"


class CoachingSync:
    def __init__(
        self,
        connector: Connector,
        tasks: TaskStore,
        cap: int,
        today: Callable[[], date] = date.today,
        queue_bound: int = 3,
        stale_after: float = STALE_AFTER,
        due_for_check: Callable[[str, Sequence[str]], Sequence[str]] | None = None,
    ) -> None:
        self.connector, self.tasks, self.cap, self.today = connector, tasks, cap, today
        self.queue_bound, self.stale_after = queue_bound, stale_after
        # Which reps' task states to read now: all of them unless the caller keeps the
        # reads to one per rep per interval (each costs a CRM call per batch).
        self.due_for_check = due_for_check or (lambda crm, reps: reps)
        self.crm = connector.name

    def run(
        self, items: Sequence[tuple[Decision, Facts]], *, promote: bool = True
    ) -> CoachingOutcome:
        """Bring the tasks of these decisions in step.

        ``promote=False`` (sweeps) only claims and closes; the sweep then calls
        :meth:`refresh` once at the end instead of re-reading every rep's tasks
        and retrying their queue on every page.
        """
        outcome = CoachingOutcome()
        reps = sorted({facts.owner.id for _, facts in items if facts.owner.id})
        if promote:
            self._notice_crm_changes(self.due_for_check(self.crm, reps), outcome)
        opportunity_ids = [d.opportunity_id for d, _ in items]
        rows = {r.id: r for r in self.tasks.live_for(self.crm, opportunity_ids)}
        wanted = [
            plan.Wanted(d.opportunity_id, t.rule, f.owner.id)
            for d, f in items
            if not d.frozen
            for t in d.coaching
        ]
        decided = plan.plan_batch(
            opportunity_ids,
            wanted,
            [held(r) for r in rows.values()],
            self.tasks.handled_for(self.crm, opportunity_ids),
        )
        by_opp = {d.opportunity_id: (d, f) for d, f in items}
        self._close([rows[h.id] for h in decided.close], by_opp, outcome)
        self._claim(decided.claim, by_opp)
        if promote:
            self._recover(outcome)
            self._rebalance(reps, outcome)
        return outcome

    def refresh(self) -> CoachingOutcome:
        """For all reps: notice tasks completed or deleted in the CRM, recover tasks whose
        creator died, rebuild the slot counters from the rows, and start queued tasks.

        A manager completing a task sends no deal webhook, so sweeps call this to
        bring the next queued task forward.
        """
        outcome = CoachingOutcome()
        reps = self.tasks.reps_with(self.crm)
        self._notice_crm_changes(reps, outcome)
        self._recover(outcome)
        fixed = self.tasks.recount(self.crm)
        if fixed:
            log.warning("%s: %d coaching slot counters differed from their rows", self.crm, fixed)
        self._rebalance(reps, outcome)
        return outcome

    def forget(self, opportunity_ids: Sequence[str]) -> CoachingOutcome:
        """Deals deleted or merged away in the CRM: their tasks stop counting against the
        cap, and each rep's next queued task takes the freed slot."""
        outcome = CoachingOutcome()
        live = self.tasks.live_for(self.crm, opportunity_ids)
        note = "the opportunity was deleted in the CRM"
        for row in live:
            if self.tasks.move(row, row.status, "deleted", note=note):
                outcome.closed.append(_pair(row))
        self._rebalance(sorted({row.rep_id for row in live}), outcome)
        return outcome

    # -- steps ---------------------------------------------------------------

    def _notice_crm_changes(self, reps: Sequence[str], outcome: CoachingOutcome) -> None:
        rows = [r for r in self.tasks.for_reps(self.crm, reps, "open") if r.task_id]
        if not rows:
            return
        states = self.connector.task_states([r.task_id for r in rows])
        by_id = {r.id: r for r in rows}
        for found, state in plan.ended_in_crm([held(r) for r in rows], states):
            if self.tasks.move(by_id[found.id], "open", state, note=f"{state} in the CRM"):
                outcome.noticed.append(_pair(found))

    def _close(
        self,
        stale: Sequence[TaskRow],
        by_opp: dict[str, tuple[Decision, Facts]],
        outcome: CoachingOutcome,
    ) -> None:
        reasons = {r.id: close_reason(*by_opp[r.opportunity_id]) for r in stale}
        closing = [r for r in stale if r.status == "open" and r.task_id]
        results = self.connector.close_tasks([TaskClose(r.task_id, reasons[r.id]) for r in closing])
        failed = {res.ref for res in results if not res.ok}
        for row in stale:
            if row.status == "open" and row.task_id in failed:
                outcome.failed.append(_pair(row))
            elif self.tasks.move(row, row.status, "closed", note=reasons[row.id]):
                outcome.closed.append(_pair(row))

    def _claim(
        self, claims: Sequence[plan.Wanted], by_opp: dict[str, tuple[Decision, Facts]]
    ) -> None:
        """Insert the claims as queued rows, in one transaction; a claim another worker
        made first is skipped."""
        rows = []
        for wanted in claims:
            decision, facts = by_opp[wanted.opportunity_id]
            task = next(t for t in decision.coaching if t.rule == wanted.rule)
            score, close = importance(facts)
            rows.append(
                TaskRow(
                    crm=self.crm,
                    opportunity_id=wanted.opportunity_id,
                    rule=task.rule,
                    rep_id=facts.owner.id,
                    assignee_id=assignee(task, facts),
                    status="queued",
                    subject=task.subject,
                    body=task.body,
                    due_in_days=task.due_in_days,
                    priority=task.priority,
                    score=score,
                    close_date=close,
                    attempts=0,
                    note="",
                    task_id="",
                )
            )
        self.tasks.add_many(rows)

    def _rebalance(self, reps: Sequence[str], outcome: CoachingOutcome) -> None:
        """Per rep: start queued tasks into free slots, drop those beyond the queue bound."""
        queued = self.tasks.for_reps(self.crm, reps, "queued")
        occupied = self.tasks.slots(self.crm, reps)
        starting: list[TaskRow] = []
        for rep in reps:
            mine = {r.id: r for r in queued if r.rep_id == rep}
            moves = plan.plan_queue(
                [held(r) for r in mine.values()], occupied[rep], self.cap, self.queue_bound
            )
            drop = [mine[h.id] for h in moves.drop]
            dropped = set(self.tasks.move_queued(drop, "dropped", "beyond the queue bound"))
            outcome.dropped.extend(_pair(row) for row in drop if row.id in dropped)
            for h in moves.start:
                if self.tasks.move(mine[h.id], "queued", "starting", cap=self.cap, attempted=True):
                    starting.append(mine[h.id])
        if starting:
            self._create(starting, outcome)
        outcome.queued = self.tasks.count(self.crm, reps, "queued")

    def _create(self, rows: list[TaskRow], outcome: CoachingOutcome) -> None:
        """Create the started tasks; whatever happens, no row stays started by us."""
        today = self.today()
        specs = {str(row.id): task_spec(row, today) for row in rows}
        tried = [row for row in rows if row.attempts]  # attempts as read before this start
        adopted = self.connector.find_tasks([specs[str(r.id)] for r in tried]) if tried else {}
        fresh = [row for row in rows if str(row.id) not in adopted]
        try:
            created = (
                self.connector.create_tasks([specs[str(r.id)] for r in fresh]) if fresh else []
            )
        except BaseException as exc:
            for row in fresh:
                self.tasks.move(row, "starting", "queued", note="creation failed; will retry")
            if not (isinstance(exc, ConnectorError) and exc.retryable):
                raise
            created = [WriteResult(str(r.id), False, error=str(exc), retryable=True) for r in fresh]
        results = {res.ref: res for res in created}
        for row in rows:
            key = str(row.id)
            result = results.get(key)
            if key in adopted or (result is not None and result.ok):
                task_id = adopted.get(key) or result.id  # type: ignore[union-attr]
                if self.tasks.move(row, "starting", "open", task_id=task_id):
                    outcome.created.append(_pair(row))
                continue
            outcome.failed.append(_pair(row))
            if result is None or result.retryable:
                outcome.retry = True
                note = result.error[:500] if result else "not created"
                self.tasks.move(row, "starting", "queued", note=note)
            else:
                self.tasks.move(row, "starting", "failed", note=result.error)

    def _recover(self, outcome: CoachingOutcome) -> None:
        """Tasks whose creator died mid-creation: adopt them from the CRM, or queue them."""
        stale = self.tasks.stale_starting(self.crm, self.stale_after)
        if not stale:
            return
        today = self.today()
        found = self.connector.find_tasks([task_spec(row, today) for row in stale])
        for row in stale:
            task_id = found.get(str(row.id))
            if task_id and self.tasks.move(row, "starting", "open", task_id=task_id):
                outcome.created.append(_pair(row))
            elif not task_id:
                self.tasks.move(row, "starting", "queued", note="creation was interrupted")
