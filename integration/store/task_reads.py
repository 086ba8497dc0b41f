"""Reads of the coaching task rows and slot counters (the changes: :mod:`.tasks`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from integration.store.models import SlotRow, TaskRow

LIVE = ("open", "starting", "queued")
#: Statuses that take one of the rep's slots: created in the CRM, or being created.
OCCUPYING = ("open", "starting")


class TaskReads:
    """What the coaching step, the reports and the previews read of the task rows."""

    def __init__(self, session: sessionmaker[Session]) -> None:
        self.session = session

    def live_for(self, crm: str, opportunity_ids: Sequence[str]) -> list[TaskRow]:
        """Open, starting and queued tasks of these opportunities."""
        if not opportunity_ids:
            return []
        with self.session() as session:
            return list(
                session.scalars(
                    select(TaskRow).where(
                        TaskRow.crm == crm,
                        TaskRow.opportunity_id.in_(list(opportunity_ids)),
                        TaskRow.status.in_(LIVE),
                    )
                )
            )

    def handled_for(self, crm: str, opportunity_ids: Sequence[str]) -> set[tuple[str, str]]:
        """(opportunity, rule) pairs whose task a manager completed or deleted in the CRM.

        Coaching that was done is not asked for again; a task the service closed
        because the deal stopped qualifying may be created anew if it qualifies again.
        """
        if not opportunity_ids:
            return set()
        with self.session() as session:
            rows = session.execute(
                select(TaskRow.opportunity_id, TaskRow.rule).where(
                    TaskRow.crm == crm,
                    TaskRow.opportunity_id.in_(list(opportunity_ids)),
                    TaskRow.status.in_(("completed", "deleted")),
                )
            )
            return {(opp, rule) for opp, rule in rows}

    def for_reps(self, crm: str, rep_ids: Sequence[str], status: str) -> list[TaskRow]:
        """Tasks of these reps in one status; queued ones most important first."""
        if not rep_ids:
            return []
        with self.session() as session:
            return list(
                session.scalars(
                    select(TaskRow)
                    .where(
                        TaskRow.crm == crm,
                        TaskRow.rep_id.in_(list(rep_ids)),
                        TaskRow.status == status,
                    )
                    .order_by(TaskRow.score.desc(), TaskRow.close_date, TaskRow.id)
                )
            )

    def slots(self, crm: str, rep_ids: Sequence[str]) -> dict[str, int]:
        """The slot counter of each rep (0 when the rep has none yet)."""
        with self.session() as session:
            taken = dict(
                session.execute(
                    select(SlotRow.rep_id, SlotRow.open_count).where(
                        SlotRow.crm == crm, SlotRow.rep_id.in_(list(rep_ids))
                    )
                ).all()
            )
        return {rep: taken.get(rep, 0) for rep in rep_ids}

    def top_queued(self, crm: str, rep_id: str, limit: int) -> list[TaskRow]:
        """The rep's ``limit`` most important queued tasks."""
        with self.session() as session:
            return list(
                session.scalars(
                    select(TaskRow)
                    .where(TaskRow.crm == crm, TaskRow.rep_id == rep_id, TaskRow.status == "queued")
                    .order_by(TaskRow.score.desc(), TaskRow.close_date, TaskRow.id)
                    .limit(limit)
                )
            )

    def stale_starting(self, crm: str, older_than: float) -> list[TaskRow]:
        """Tasks whose creation started ``older_than`` seconds ago and never finished."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        with self.session() as session:
            return list(
                session.scalars(
                    select(TaskRow).where(
                        TaskRow.crm == crm,
                        TaskRow.status == "starting",
                        TaskRow.updated_at < cutoff,
                    )
                )
            )

    def count(self, crm: str, rep_ids: Sequence[str], status: str) -> int:
        with self.session() as session:
            return (
                session.scalar(
                    select(func.count()).where(
                        TaskRow.crm == crm,
                        TaskRow.rep_id.in_(list(rep_ids)),
                        TaskRow.status == status,
                    )
                )
                or 0
            )

    def reps_with(self, crm: str, statuses: Sequence[str] = LIVE) -> list[str]:
        """Reps who have tasks in these statuses."""
        with self.session() as session:
            return list(
                session.scalars(
                    select(TaskRow.rep_id)
                    .where(TaskRow.crm == crm, TaskRow.status.in_(list(statuses)))
                    .distinct()
                )
            )

    def all_tasks(self, crm: str | None = None) -> list[TaskRow]:
        with self.session() as session:
            query = select(TaskRow).order_by(TaskRow.id)
            if crm:
                query = query.where(TaskRow.crm == crm)
            return list(session.scalars(query))

    def open_count(self, crm: str, rep_id: str) -> int:
        with self.session() as session:
            row = session.get(SlotRow, (crm, rep_id))
            return row.open_count if row else 0

    def occupying_counts(self, crm: str | None = None) -> dict[tuple[str, str], int]:
        """(crm, rep) -> open and starting rows, counted from the rows themselves."""
        query = (
            select(TaskRow.crm, TaskRow.rep_id, func.count())
            .where(TaskRow.status.in_(OCCUPYING))
            .group_by(TaskRow.crm, TaskRow.rep_id)
        )
        if crm:
            query = query.where(TaskRow.crm == crm)
        with self.session() as session:
            return {(c, rep): n for c, rep, n in session.execute(query)}

    def mismatched(self) -> list[tuple[str, str, int, int]]:
        """(crm, rep, counter, occupying rows) for every rep whose counter is off."""
        rows = self.occupying_counts()
        with self.session() as session:
            counters = {
                (c, r): n
                for c, r, n in session.execute(
                    select(SlotRow.crm, SlotRow.rep_id, SlotRow.open_count)
                )
            }
        keys = sorted(set(rows) | set(counters))
        return [
            (crm, rep, counters.get((crm, rep), 0), rows.get((crm, rep), 0))
            for crm, rep in keys
            if counters.get((crm, rep), 0) != rows.get((crm, rep), 0)
        ]

    def summary(self) -> list[tuple[str, str, str, str, int]]:
        """(crm, assignee, rep, status, count) for the coaching report."""
        with self.session() as session:
            rows = session.execute(
                select(
                    TaskRow.crm, TaskRow.assignee_id, TaskRow.rep_id, TaskRow.status, func.count()
                )
                .where(TaskRow.status != "")
                .group_by(TaskRow.crm, TaskRow.assignee_id, TaskRow.rep_id, TaskRow.status)
            ).all()
            return [tuple(r) for r in rows]  # type: ignore[misc]

    def snapshot(self) -> tuple[list[tuple], list[tuple], dict[tuple[str, str], int], list[tuple]]:
        """Everything a rules preview needs to count coaching, in four reads.

        Live tasks ``(crm, opportunity, rule, status, rep)``, the pairs a manager
        completed or deleted ``(crm, opportunity, rule)``, the open count per
        ``(crm, rep)`` as the cap reservation sees it, and the pairs dropped beyond
        the queue bound (claimed again, and dropped again, while the queue is full).
        """
        with self.session() as session:
            live = session.execute(
                select(
                    TaskRow.crm,
                    TaskRow.opportunity_id,
                    TaskRow.rule,
                    TaskRow.status,
                    TaskRow.rep_id,
                ).where(TaskRow.status.in_(LIVE))
            ).all()
            handled = session.execute(
                select(TaskRow.crm, TaskRow.opportunity_id, TaskRow.rule).where(
                    TaskRow.status.in_(("completed", "deleted"))
                )
            ).all()
            slots = session.execute(select(SlotRow.crm, SlotRow.rep_id, SlotRow.open_count)).all()
            dropped = session.execute(
                select(TaskRow.crm, TaskRow.opportunity_id, TaskRow.rule).where(
                    TaskRow.status == "dropped"
                )
            ).all()
        return (
            [tuple(r) for r in live],
            [tuple(r) for r in handled],
            {(crm, rep): count for crm, rep, count in slots},
            [tuple(r) for r in dropped],
        )
