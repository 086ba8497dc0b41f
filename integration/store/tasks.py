"""Coaching tasks in the store: what the service created, queued and closed.

The cap ("no rep carries more than N open coaching tasks") is enforced with a
counter row per rep, reserved by one conditional ``UPDATE ... WHERE open_count <
cap``: the database makes it atomic, so two workers handling deals of the same
rep at the same moment can never both take the last slot. A partial unique index
allows at most one live task per (opportunity, coaching rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from integration.store.models import SlotRow, TaskRow

LIVE = ("open", "queued")


def _now() -> datetime:
    return datetime.now(UTC)


class TaskStore:
    def __init__(self, session: sessionmaker[Session]) -> None:
        self.session = session

    def live_for(self, crm: str, opportunity_ids: Sequence[str]) -> list[TaskRow]:
        """Open and queued tasks of these opportunities."""
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

    def free_slots(self, crm: str, rep_ids: Sequence[str], cap: int) -> dict[str, int]:
        """Reps among ``rep_ids`` with a free slot, and how many they have."""
        with self.session() as session:
            taken = dict(
                session.execute(
                    select(SlotRow.rep_id, SlotRow.open_count).where(
                        SlotRow.crm == crm, SlotRow.rep_id.in_(list(rep_ids))
                    )
                ).all()
            )
        free = {rep: cap - taken.get(rep, 0) for rep in rep_ids}
        return {rep: n for rep, n in free.items() if n > 0}

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

    def reserve_slot(self, crm: str, rep_id: str, cap: int) -> bool:
        """Take one of the rep's ``cap`` slots; False when all are taken."""
        with self.session.begin() as session:
            exists = session.get(SlotRow, (crm, rep_id))
            if exists is None:
                try:
                    with session.begin_nested():
                        session.execute(
                            insert(SlotRow).values(crm=crm, rep_id=rep_id, open_count=0)
                        )
                except IntegrityError:
                    pass
            result = session.execute(
                update(SlotRow)
                .where(SlotRow.crm == crm, SlotRow.rep_id == rep_id, SlotRow.open_count < cap)
                .values(open_count=SlotRow.open_count + 1)
            )
            return result.rowcount == 1

    def release_slot(self, crm: str, rep_id: str) -> None:
        with self.session.begin() as session:
            session.execute(
                update(SlotRow)
                .where(SlotRow.crm == crm, SlotRow.rep_id == rep_id, SlotRow.open_count > 0)
                .values(open_count=SlotRow.open_count - 1)
            )

    def open_count(self, crm: str, rep_id: str) -> int:
        with self.session() as session:
            row = session.get(SlotRow, (crm, rep_id))
            return row.open_count if row else 0

    def add(self, task: TaskRow) -> TaskRow | None:
        """Insert a live task; ``None`` when one is already live for that opportunity and rule."""
        task.created_at = task.updated_at = _now()
        try:
            with self.session.begin() as session:
                session.add(task)
            return task
        except IntegrityError:
            return None

    def set_status(self, row_id: int, status: str, note: str = "", task_id: str = "") -> None:
        values: dict[str, object] = {"status": status, "updated_at": _now()}
        if note:
            values["note"] = note
        if task_id:
            values["task_id"] = task_id
        with self.session.begin() as session:
            session.execute(update(TaskRow).where(TaskRow.id == row_id).values(**values))

    def recount(self, crm: str) -> None:
        """Rebuild every rep's slot counter from the open tasks (repairs any drift)."""
        with self.session.begin() as session:
            counts = dict(
                session.execute(
                    select(TaskRow.rep_id, func.count())
                    .where(TaskRow.crm == crm, TaskRow.status == "open")
                    .group_by(TaskRow.rep_id)
                ).all()
            )
            for slot in session.scalars(select(SlotRow).where(SlotRow.crm == crm)):
                slot.open_count = counts.pop(slot.rep_id, 0)
            for rep_id, count in counts.items():
                session.add(SlotRow(crm=crm, rep_id=rep_id, open_count=count))

    def summary(self) -> list[tuple[str, str, str, str, int]]:
        """(crm, assignee, rep, status, count) for the coaching report."""
        with self.session() as session:
            rows = session.execute(
                select(
                    TaskRow.crm, TaskRow.assignee_id, TaskRow.rep_id, TaskRow.status, func.count()
                )
                .where(and_(TaskRow.status != ""))
                .group_by(TaskRow.crm, TaskRow.assignee_id, TaskRow.rep_id, TaskRow.status)
            ).all()
            return [tuple(r) for r in rows]  # type: ignore[misc]
