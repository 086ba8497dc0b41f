"""Process a batch of opportunities: read, evaluate, plan, write, audit.

This is the one place where the pure core meets I/O. Everything is batched: one
read call per batch of ids, one write call per batch of changed records (the
connector splits by the CRM's batch size), and only changed fields are written.

A write the CRM rejects is recorded on the decision and in the writes table,
never silently lost; a transient failure (rate limit, 5xx, lock) raises
:class:`RetryLater` after everything else is recorded, so the job is retried and
the retry writes only what is still missing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from connectors.base import Connector, FieldUpdate, WriteResult
from integration.domain.model import Decision, Facts, OpportunityRecord
from integration.engine.evaluate import evaluate
from integration.engine.rulebook import Rulebook
from integration.pipeline.coaching import CoachingOutcome, CoachingSync
from integration.pipeline.planner import held_values, plan_fields, reported_values
from integration.store.database import Store
from integration.store.entries import DecisionEntry


class RetryLater(Exception):
    """Some writes failed transiently; the whole batch is safe to run again."""


@dataclass
class PlannedChange:
    """One opportunity's planned (or applied) changes, for dry runs and summaries."""

    decision: Decision
    facts: Facts
    changes: dict[str, tuple[Any, Any]]
    error: str = ""


@dataclass
class BatchOutcome:
    evaluated: int = 0
    changed: int = 0
    frozen: int = 0
    failed: int = 0
    tags: Counter = field(default_factory=Counter)
    planned: list[PlannedChange] = field(default_factory=list)
    coaching: CoachingOutcome = field(default_factory=CoachingOutcome)

    def add(self, other: BatchOutcome) -> None:
        self.evaluated += other.evaluated
        self.changed += other.changed
        self.frozen += other.frozen
        self.failed += other.failed
        self.tags.update(other.tags)
        self.planned.extend(other.planned)
        self.add_coaching(other.coaching)

    def add_coaching(self, other: CoachingOutcome) -> None:
        for name in ("created", "closed", "noticed", "failed"):
            getattr(self.coaching, name).extend(getattr(other, name))
        self.coaching.queued += other.queued


class Processor:
    """Runs the pipeline for one CRM with one rulebook."""

    def __init__(
        self,
        connector: Connector,
        rulebook: Rulebook,
        store: Store,
        *,
        trigger: str = "event",
        dry_run: bool = False,
        promote: bool = True,
        keep_planned: bool = False,
        today: Callable[[], date] = date.today,
        due_for_check: Callable[[str, Sequence[str]], Sequence[str]] | None = None,
    ) -> None:
        self.connector, self.rulebook, self.store = connector, rulebook, store
        self.due_for_check = due_for_check
        self.trigger, self.dry_run, self.keep_planned = trigger, dry_run, keep_planned
        self.promote = promote
        self.today = today

    def process_ids(
        self, ids: Sequence[str], event_keys: dict[str, str] | None = None
    ) -> BatchOutcome:
        """Re-read these opportunities from the CRM and bring them in step."""
        records = self.connector.read_opportunities(list(dict.fromkeys(ids)))
        return self.process_records(records, event_keys or {})

    def process_records(
        self, records: Sequence[OpportunityRecord], event_keys: dict[str, str] | None = None
    ) -> BatchOutcome:
        outcome = BatchOutcome()
        planned = [self._plan(record) for record in records]
        keys = event_keys or {}
        entries = [
            self._entry(item, record, keys.get(record.id, ""))
            for item, record in zip(planned, records, strict=True)
        ]
        # The audit comes first: decisions and their writes are recorded (the writes as
        # "pending") before the CRM is written, so no CRM write is ever unaudited.
        decision_ids = (
            [] if self.dry_run or not entries else self.store.record_many(entries, pending=True)
        )
        results = {} if self.dry_run else self._write_and_settle(planned, records, decision_ids)
        retry = False
        for item in planned:
            result = results.get(item.decision.opportunity_id)
            if result is not None and not result.ok:
                retry = retry or result.retryable
            self._count(outcome, item)
        coaching_items = [(p.decision, p.facts) for p in planned]
        if not self.dry_run and coaching_items:
            ruleset = self.rulebook.ruleset
            sync = CoachingSync(
                self.connector,
                self.store.tasks,
                ruleset.max_open_per_rep,
                self.today,
                queue_bound=ruleset.queue_per_rep,
                due_for_check=self.due_for_check,
            )
            outcome.coaching = sync.run(coaching_items, promote=self.promote)
        if retry or outcome.coaching.retry:
            raise RetryLater(f"{self.connector.name}: some writes failed transiently; will retry")
        return outcome

    def _write_and_settle(
        self,
        planned: Sequence[PlannedChange],
        records: Sequence[OpportunityRecord],
        decision_ids: Sequence[int],
    ) -> dict[str, WriteResult]:
        """Write the CRM, then mark each recorded write done or failed (with its reason)."""
        try:
            results = self._write(planned)
        except Exception as exc:
            results = {
                p.decision.opportunity_id: WriteResult(
                    p.decision.opportunity_id, False, error=str(exc)
                )
                for p in planned
                if p.changes
            }
            self._settle(planned, records, decision_ids, results)
            raise
        self._settle(planned, records, decision_ids, results)
        return results

    def _settle(
        self,
        planned: Sequence[PlannedChange],
        records: Sequence[OpportunityRecord],
        decision_ids: Sequence[int],
        results: dict[str, WriteResult],
    ) -> None:
        done, failed = [], []
        for item, record, decision_id in zip(planned, records, decision_ids, strict=True):
            result = results.get(item.decision.opportunity_id)
            if result is not None and not result.ok:
                item.error = result.error or "write failed"
                failed.append((decision_id, self._entry(item, record, "")))
            elif item.changes:
                done.append(decision_id)
        self.store.settle_writes(done, failed)

    def _plan(self, record: OpportunityRecord) -> PlannedChange:
        rulebook = self.rulebook
        facts = rulebook.managers.resolve(rulebook.targets.resolve(record.facts))
        decision = evaluate(facts, rulebook.ruleset, self.today())
        return PlannedChange(decision, facts, plan_fields(decision, record.current))

    def _write(self, planned: Sequence[PlannedChange]) -> dict[str, WriteResult]:
        updates = [
            FieldUpdate(p.decision.opportunity_id, {k: new for k, (_, new) in p.changes.items()})
            for p in planned
            if p.changes
        ]
        if not updates:
            return {}
        return {result.ref: result for result in self.connector.update_opportunities(updates)}

    def _count(self, outcome: BatchOutcome, item: PlannedChange) -> None:
        outcome.evaluated += 1
        outcome.tags[item.decision.fit] += 1
        outcome.frozen += item.decision.frozen
        if item.error:
            outcome.failed += 1
        elif item.changes:
            outcome.changed += 1
        if self.keep_planned and item.changes:
            outcome.planned.append(item)

    def _entry(
        self, item: PlannedChange, record: OpportunityRecord, event_key: str
    ) -> DecisionEntry:
        decision = item.decision
        if item.error:
            decision = _with_error(decision, f"write failed: {item.error}")
        return DecisionEntry(
            decision,
            item.facts,
            item.changes,
            trigger=self.trigger,
            event_key=event_key,
            target_list_version=self.rulebook.targets.version,
            write_error=item.error,
            reported=reported_values(decision, record.current),
            raw_facts=record.facts,
            held=held_values(record.current, {} if item.error else item.changes),
        )


def _with_error(decision: Decision, error: str) -> Decision:
    return replace(decision, errors=(*decision.errors, error))
