"""Coaching tasks in step with decisions: create, cap, queue, promote, close.

For a batch of decisions this:

1. notices tasks a manager completed or deleted in the CRM (one batch read of
   the involved reps' open tasks) and frees their slots;
2. closes, with a comment, the live tasks whose deal no longer meets the rule;
3. claims each wanted (opportunity, rule) in the store first (a unique index
   makes a duplicate impossible under redelivery or concurrency), then takes a
   slot of the rep's cap atomically; without a slot the task is queued;
4. promotes queued tasks, most important first, into freed slots.

The service only ever counts, edits or closes tasks it created (their ids are in
the store).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from connectors.base import Connector, TaskClose
from integration.domain.model import CoachingTask, Decision, Facts
from integration.pipeline.planner import assignee, close_reason, importance, task_spec
from integration.store.models import TaskRow
from integration.store.tasks import TaskStore


@dataclass
class CoachingOutcome:
    created: list[str] = field(default_factory=list)  # "opp:rule"
    queued: int = 0  # still waiting for a free slot, among the reps looked at
    closed: list[str] = field(default_factory=list)
    noticed: list[str] = field(default_factory=list)  # completed/deleted in the CRM
    failed: list[str] = field(default_factory=list)
    retry: bool = False


class CoachingSync:
    def __init__(
        self,
        connector: Connector,
        tasks: TaskStore,
        cap: int,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.connector, self.tasks, self.cap, self.today = connector, tasks, cap, today
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
            self._notice_crm_changes(reps, outcome)
        live = self.tasks.live_for(self.crm, [d.opportunity_id for d, _ in items])
        self._close_stale(items, live, outcome)
        self._create_wanted(items, live, outcome)
        if promote:
            self._promote(reps, outcome)
        return outcome

    def refresh(self) -> CoachingOutcome:
        """Notice tasks completed or deleted in the CRM and promote queued ones, for all reps.

        A manager completing a task sends no deal webhook, so sweeps call this to
        bring the next queued task forward.
        """
        outcome = CoachingOutcome()
        reps = self.tasks.reps_with(self.crm)
        self._notice_crm_changes(reps, outcome)
        self._promote(reps, outcome)
        return outcome

    def forget(self, opportunity_ids: Sequence[str]) -> CoachingOutcome:
        """Deals deleted or merged away in the CRM: their tasks stop counting against the
        cap, and each rep's next queued task takes the freed slot."""
        outcome = CoachingOutcome()
        live = self.tasks.live_for(self.crm, opportunity_ids)
        for row in live:
            self.tasks.set_status(row.id, "deleted", note="the opportunity was deleted in the CRM")
            if row.status == "open":
                self.tasks.release_slot(self.crm, row.rep_id)
            outcome.closed.append(f"{row.opportunity_id}:{row.rule}")
        self._promote(sorted({row.rep_id for row in live}), outcome)
        return outcome

    def _notice_crm_changes(self, reps: Sequence[str], outcome: CoachingOutcome) -> None:
        rows = [r for r in self.tasks.for_reps(self.crm, reps, "open") if r.task_id]
        if not rows:
            return
        states = self.connector.task_states([r.task_id for r in rows])
        for row in rows:
            state = states.get(row.task_id, "deleted")
            if state in ("completed", "deleted"):
                self.tasks.set_status(row.id, state, note=f"{state} in the CRM")
                self.tasks.release_slot(self.crm, row.rep_id)
                outcome.noticed.append(f"{row.opportunity_id}:{row.rule}")

    def _close_stale(
        self, items: Sequence[tuple[Decision, Facts]], live: list[TaskRow], outcome: CoachingOutcome
    ) -> None:
        wanted = {(d.opportunity_id, t.rule) for d, _ in items for t in d.coaching}
        by_opp = {d.opportunity_id: (d, f) for d, f in items}
        stale = [r for r in live if (r.opportunity_id, r.rule) not in wanted]
        closing = [r for r in stale if r.status == "open" and r.task_id]
        reasons = {r.id: close_reason(*by_opp[r.opportunity_id]) for r in stale}
        results = self.connector.close_tasks([TaskClose(r.task_id, reasons[r.id]) for r in closing])
        failed = {res.ref for res in results if not res.ok}
        for row in stale:
            if row.task_id in failed:
                outcome.failed.append(f"{row.opportunity_id}:{row.rule}")
                continue
            self.tasks.set_status(row.id, "closed", note=reasons[row.id])
            if row.status == "open":
                self.tasks.release_slot(self.crm, row.rep_id)
            outcome.closed.append(f"{row.opportunity_id}:{row.rule}")

    def _create_wanted(
        self, items: Sequence[tuple[Decision, Facts]], live: list[TaskRow], outcome: CoachingOutcome
    ) -> None:
        """Claim every wanted (opportunity, rule) as queued; ``_promote`` starts them."""
        have = {(r.opportunity_id, r.rule) for r in live}
        have |= self.tasks.handled_for(self.crm, [d.opportunity_id for d, _ in items])
        for decision, facts in items:
            for task in decision.coaching if not decision.frozen else ():
                if (decision.opportunity_id, task.rule) not in have:
                    self._claim(task, decision, facts)

    def _claim(self, task: CoachingTask, decision: Decision, facts: Facts) -> TaskRow | None:
        """Insert the live row; ``None`` when another worker claimed it first."""
        score, close = importance(facts)
        return self.tasks.add(
            TaskRow(
                crm=self.crm,
                opportunity_id=decision.opportunity_id,
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
            )
        )

    def _promote(self, reps: Sequence[str], outcome: CoachingOutcome) -> None:
        """Start queued tasks, most important first, while the rep has a free slot.

        Only reps with a free slot have their queue read, and only as many tasks
        as they have slots, so a sweep's memory does not grow with the queue.
        """
        starting = []
        for rep, free in self.tasks.free_slots(self.crm, reps, self.cap).items():
            for row in self.tasks.top_queued(self.crm, rep, free):
                if not self.tasks.reserve_slot(self.crm, rep, self.cap):
                    break  # another worker took the slot
                starting.append(row)
        if starting:
            self._create(starting, outcome)
        outcome.queued = self.tasks.count(self.crm, reps, "queued")

    def _create(self, rows: list[TaskRow], outcome: CoachingOutcome) -> None:
        today = self.today()
        specs = [task_spec(row, today) for row in rows]
        results = {res.ref: res for res in self.connector.create_tasks(specs)}
        for row in rows:
            result = results.get(str(row.id))
            if result is not None and result.ok:
                self.tasks.set_status(row.id, "open", task_id=result.id)
                outcome.created.append(f"{row.opportunity_id}:{row.rule}")
                continue
            self.tasks.release_slot(self.crm, row.rep_id)
            outcome.failed.append(f"{row.opportunity_id}:{row.rule}")
            if result is None or result.retryable:
                outcome.retry = True
            else:
                self.tasks.set_status(row.id, "failed", note=result.error)
