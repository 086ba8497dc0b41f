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
rows and :meth:`TaskStore.recount` can rebuild it from them at any time. Moves
that neither take nor give back a slot (queued -> dropped) need no counter: they
go many rows to one conditional UPDATE (:meth:`TaskStore.move_queued`), and new
claims many rows to one INSERT (:meth:`TaskStore.add_many`), so a sweep that
queues thousands of tasks does not commit once per task.

A partial unique index allows at most one live task per (opportunity, rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from integration.store.dialect import insert_for
from integration.store.models import SlotRow, TaskRow
from integration.store.task_reads import OCCUPYING, TaskReads


class _Unchanged(Exception):
    """The row had already left the status: undo whatever the transaction did."""


def _now() -> datetime:
    return datetime.now(UTC)


def _column_values(task: TaskRow) -> dict[str, object]:
    """A new row's column values for a bulk insert, unset ones at their column default."""
    values = {}
    for column in TaskRow.__table__.columns:
        if column.name == "id":
            continue
        value = getattr(task, column.name)
        if value is None and column.default is not None and column.default.is_scalar:
            value = column.default.arg
        values[column.name] = value
    return values


class TaskStore(TaskReads):
    """The task rows' reads (:class:`TaskReads`) and every change of their status."""

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

    def add_many(self, tasks: Sequence[TaskRow]) -> None:
        """Insert queued tasks in one transaction (one executemany).

        A task already live for its opportunity and rule (another worker claimed it
        first) is skipped by ``ON CONFLICT DO NOTHING`` on the partial unique index,
        so one claim losing a race never undoes the others.
        """
        if not tasks:
            return
        now = _now()
        rows = [{**_column_values(task), "created_at": now, "updated_at": now} for task in tasks]
        with self.session.begin() as session:
            statement = insert_for(session, TaskRow.__table__).on_conflict_do_nothing()
            session.execute(statement, rows)

    def move_queued(self, rows: Sequence[TaskRow], to: str, note: str) -> list[int]:
        """Move queued tasks to a status that takes no slot (``dropped``, ``closed``) in
        one conditional UPDATE; the ids this call moved (a row another worker moved
        first is left alone). No slot changes, so no counter is touched."""
        assert to not in OCCUPYING, "starting a task takes a slot: use move()"
        if not rows:
            return []
        with self.session.begin() as session:
            moved = session.scalars(
                update(TaskRow)
                .where(TaskRow.id.in_([r.id for r in rows]), TaskRow.status == "queued")
                .values(status=to, note=note, updated_at=_now())
                .returning(TaskRow.id)
            )
            return list(moved)

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
