"""Coaching tasks in the store: what the service created, queued and closed.

Every change of a task's status is one conditional ``UPDATE ... WHERE id = ? AND
status = ?`` naming the status it leaves (:meth:`TaskStore.move`): of two
workers acting on the same row, exactly one changes it and only that one acts
on the change. The rep's slot counter moves in the same transaction, and only
when the row did: a slot is taken by the update that starts a queued task
(``queued -> starting``, refused when the rep is at the cap) and given back only
by the update that ends an occupying one. Each such transaction first touches
the rep's counter row, which serialises them per rep (a row lock on PostgreSQL,
the write lock on SQLite), so the counter always equals the rep's occupying
rows and :meth:`TaskStore.recount` can rebuild it from them at any time.

A partial unique index allows at most one live task per (opportunity, rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from integration.store.models import SlotRow, TaskRow

LIVE = ("open", "starting", "queued")
#: Statuses that take one of the rep's slots: created in the CRM, or being created.
OCCUPYING = ("open", "starting")


class _Unchanged(Exception):
    """The row had already left the status: undo whatever the transaction did."""


def _now() -> datetime:
    return datetime.now(UTC)


class TaskStore:
    def __init__(self, session: sessionmaker[Session]) -> None:
        self.session = session

    # -- reads -------------------------------------------------------------

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
        cutoff = _now() - timedelta(seconds=older_than)
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

    # -- changes -----------------------------------------------------------

    def add(self, task: TaskRow) -> TaskRow | None:
        """Insert a queued task; ``None`` when one is already live for that opportunity and rule."""
        task.created_at = task.updated_at = _now()
        try:
            with self.session.begin() as session:
                session.add(task)
            return task
        except IntegrityError:
            return None

    def move(
        self,
        row: TaskRow,
        leaving: str,
        to: str,
        *,
        cap: int | None = None,
        note: str = "",
        task_id: str = "",
        attempted: bool = False,
    ) -> bool:
        """Change ``row`` from ``leaving`` to ``to``; True only if this call changed it.

        Taking a slot (a move into an occupying status) needs ``cap`` and is
        refused when the rep has no free slot; leaving one gives it back. The
        counter and the row change in one transaction, or neither does.
        """
        delta = (to in OCCUPYING) - (leaving in OCCUPYING)
        values: dict[str, object] = {"status": to, "updated_at": _now()}
        if note:
            values["note"] = note
        if task_id:
            values["task_id"] = task_id
        if attempted:
            values["attempts"] = TaskRow.attempts + 1
        try:
            with self.session.begin() as session:
                if not self._take_slot(session, row.crm, row.rep_id, delta, cap):
                    return False
                changed = session.execute(
                    update(TaskRow)
                    .where(TaskRow.id == row.id, TaskRow.status == leaving)
                    .values(**values)
                ).rowcount
                if changed != 1:
                    raise _Unchanged  # rolls back the slot taken above
                if delta < 0:
                    session.execute(
                        update(SlotRow)
                        .where(
                            SlotRow.crm == row.crm,
                            SlotRow.rep_id == row.rep_id,
                            SlotRow.open_count > 0,
                        )
                        .values(open_count=SlotRow.open_count - 1)
                    )
                return True
        except _Unchanged:
            return False

    def _take_slot(
        self, session: Session, crm: str, rep_id: str, delta: int, cap: int | None
    ) -> bool:
        """Lock the rep's counter row (creating it), and take a slot when ``delta`` is 1."""
        self._lock_counter(session, crm, rep_id)
        if delta <= 0:
            return True
        taken = session.execute(
            update(SlotRow)
            .where(
                SlotRow.crm == crm,
                SlotRow.rep_id == rep_id,
                SlotRow.open_count < (cap if cap is not None else 0),
            )
            .values(open_count=SlotRow.open_count + 1)
        ).rowcount
        return taken == 1

    def _lock_counter(self, session: Session, crm: str, rep_id: str) -> None:
        """A no-op update of the counter row: the first write of the transaction locks it."""
        locked = session.execute(
            update(SlotRow)
            .where(SlotRow.crm == crm, SlotRow.rep_id == rep_id)
            .values(open_count=SlotRow.open_count)
        ).rowcount
        if locked:
            return
        try:
            with session.begin_nested():
                session.execute(insert(SlotRow).values(crm=crm, rep_id=rep_id, open_count=0))
        except IntegrityError:
            session.execute(
                update(SlotRow)
                .where(SlotRow.crm == crm, SlotRow.rep_id == rep_id)
                .values(open_count=SlotRow.open_count)
            )

    def recount(self, crm: str, rep_ids: Sequence[str] | None = None) -> int:
        """Rebuild slot counters from the occupying rows; returns how many were off.

        Each rep's counter row is locked before its rows are counted, so a
        concurrent move either finished before (and is counted) or waits and
        then applies its change to the rebuilt value.
        """
        if rep_ids is None:
            with self.session() as session:
                reps = set(session.scalars(select(SlotRow.rep_id).where(SlotRow.crm == crm)))
            reps |= set(self.reps_with(crm, OCCUPYING))
            rep_ids = sorted(reps)
        fixed = 0
        for rep in rep_ids:
            with self.session.begin() as session:
                self._lock_counter(session, crm, rep)
                rows = session.scalar(
                    select(func.count()).where(
                        TaskRow.crm == crm, TaskRow.rep_id == rep, TaskRow.status.in_(OCCUPYING)
                    )
                )
                fixed += session.execute(
                    update(SlotRow)
                    .where(SlotRow.crm == crm, SlotRow.rep_id == rep, SlotRow.open_count != rows)
                    .values(open_count=rows)
                ).rowcount
        return fixed

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
