"""The store: audit trail of decisions and writes, processed events, watermarks.

SQLite by default, PostgreSQL by URL (``ONSTRATEGY_DATABASE_URL``). The schema
is managed by Alembic; :meth:`Store.migrate` brings any database to the head
revision, so a fresh machine needs no manual step.
"""

from __future__ import annotations

import fcntl
import functools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import sessionmaker

from integration.store.dialect import INSERTS
from integration.store.entries import DecisionEntry, utcnow
from integration.store.models import (
    AppKeyRow,
    DecisionRow,
    EventRow,
    StateRow,
    WatermarkRow,
    WriteRow,
)
from integration.store.state import CurrentState
from integration.store.tasks import TaskStore
from integration.store.versions import VersionStore

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK_ID = 7_306_110  # a constant shared by every OnStrategy process


def is_outage(exc: BaseException) -> bool:
    """The store is briefly unavailable: a dropped connection, a failed connect, a lock or
    pool timeout, a deadlock. Worth retrying with backoff, like a CRM's 5xx."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | PoolTimeout)


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


class Store:
    """All reads and writes of the store go through here."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        self.session = sessionmaker(self.engine, expire_on_commit=False)
        self.tasks = TaskStore(self.session)
        self.versions = VersionStore(self.session)
        self.current = CurrentState(self.engine, self.session)

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest revision.

        Several processes start at once in production (gunicorn workers, RQ
        workers); a lock makes one of them migrate while the others wait and
        then find the schema current.
        """
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._migration_lock(), self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            with self.engine.connect() as holder:
                holder.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_ID})")
                try:
                    yield
                finally:
                    holder.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_ID})")
            return
        database = self.engine.url.database if dialect == "sqlite" else None
        if not database or database == ":memory:":
            yield
            return
        # flock on the database file itself: independent of SQLite's own (fcntl) locks
        # on Linux, and it leaves no extra file behind (an empty file is an empty database).
        with open(database, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    # -- decisions -------------------------------------------------------
    def record(self, entry: DecisionEntry) -> int:
        """Store one decision and the writes made for it; return the decision id."""
        return self.record_many([entry])[0]

    def record_many(self, entries: Sequence[DecisionEntry], pending: bool = False) -> list[int]:
        """Store a page of decisions in one transaction (one commit, not one per deal).

        ``pending``: the writes are about to be made (an outbox); :meth:`settle_writes`
        marks them done or failed once the CRM answered. Decisions go in as one
        multi-row ``INSERT ... RETURNING`` and their writes as one executemany, not a
        statement per row.
        """
        if not entries:
            return []
        with self.session.begin() as session:
            rows = [entry.row() for entry in entries]
            ids = _insert_decisions(session, rows)
            writes = [
                _values(write)
                for entry, decision_id in zip(entries, ids, strict=True)
                for write in entry.write_rows(decision_id, pending)
            ]
            if writes:
                session.execute(insert(WriteRow), writes)
            self._replace_states(session, entries, rows)
            return ids

    def settle_writes(
        self, done: Sequence[int], failed: Sequence[tuple[int, DecisionEntry]]
    ) -> None:
        """After the CRM write: the pending writes of ``done`` decisions are ``ok``; those
        of ``failed`` are ``failed`` with the reason, which the decision and the
        opportunity's current state take on too."""
        with self.session.begin() as session:
            if done:
                session.execute(
                    update(WriteRow)
                    .where(WriteRow.decision_id.in_(list(done)), WriteRow.status == "pending")
                    .values(status="ok")
                )
            rows = []
            for decision_id, entry in failed:
                session.execute(
                    update(WriteRow)
                    .where(WriteRow.decision_id == decision_id)
                    .values(status="failed", error=entry.write_error)
                )
                row = session.get(DecisionRow, decision_id)
                row.errors = json.dumps(list(entry.decision.errors))
                rows.append(row)
            if failed:
                self._replace_states(session, [entry for _, entry in failed], rows)

    def _replace_states(
        self, session: Any, entries: Sequence[DecisionEntry], rows: Sequence[DecisionRow]
    ) -> None:
        """The current-state rows, upserted in the decisions' own transaction.

        An upsert (not delete-then-insert) in key order: two workers recording
        the same opportunity at once neither collide on its key nor deadlock.
        """
        latest = {
            (e.decision.crm, e.decision.opportunity_id): (e, r)
            for e, r in zip(entries, rows, strict=True)
        }
        columns = [c.name for c in StateRow.__table__.columns]
        values = [
            {name: getattr(state, name) for name in columns}
            for state in (
                entry.state_row(row.decided_at) for _, (entry, row) in sorted(latest.items())
            )
        ]
        if values:
            session.execute(_state_upsert(session.get_bind().dialect.name), values)

    # -- current state ---------------------------------------------------
    def states(self, crm: str | None = None, batch: int = 2000) -> Iterator[StateRow]:
        """Every opportunity's current state, streamed in batches (memory stays flat)."""
        query = select(StateRow).order_by(StateRow.crm, StateRow.opportunity_id)
        if crm:
            query = query.where(StateRow.crm == crm)
        with self.session() as session:
            yield from session.scalars(query.execution_options(yield_per=batch))

    def state(self, crm: str, opportunity_id: str) -> StateRow | None:
        with self.session() as session:
            return session.get(StateRow, (crm, opportunity_id))

    def forget_states(self, crm: str, opportunity_ids: Sequence[str]) -> int:
        """Deleted or merged-away opportunities leave the current state."""
        if not opportunity_ids:
            return 0
        with self.session.begin() as session:
            result = session.execute(
                delete(StateRow).where(
                    StateRow.crm == crm, StateRow.opportunity_id.in_(list(opportunity_ids))
                )
            )
            return result.rowcount or 0

    def latest(self, crm: str, opportunity_id: str) -> DecisionRow | None:
        with self.session() as session:
            return session.scalars(
                select(DecisionRow)
                .where(DecisionRow.crm == crm, DecisionRow.opportunity_id == opportunity_id)
                .order_by(DecisionRow.id.desc())
                .limit(1)
            ).first()

    def history(self, crm: str, opportunity_id: str, limit: int = 20) -> list[DecisionRow]:
        with self.session() as session:
            return list(
                session.scalars(
                    select(DecisionRow)
                    .where(DecisionRow.crm == crm, DecisionRow.opportunity_id == opportunity_id)
                    .order_by(DecisionRow.id.desc())
                    .limit(limit)
                )
            )

    def writes_for(self, decision_ids: Sequence[int]) -> list[WriteRow]:
        with self.session() as session:
            return list(
                session.scalars(
                    select(WriteRow)
                    .where(WriteRow.decision_id.in_(decision_ids))
                    .order_by(WriteRow.id)
                )
            )

    def latest_decisions(self, crm: str | None = None) -> Iterator[DecisionRow]:
        """The newest decision of every opportunity, streamed."""
        newest = select(func.max(DecisionRow.id)).group_by(
            DecisionRow.crm, DecisionRow.opportunity_id
        )
        if crm:
            newest = newest.where(DecisionRow.crm == crm)
        query = select(DecisionRow).where(DecisionRow.id.in_(newest)).order_by(DecisionRow.id)
        with self.session() as session:
            yield from session.scalars(query.execution_options(yield_per=1000))

    def fit_counts(self) -> dict[tuple[str, str], int]:
        """(crm, fit) -> opportunities whose newest decision has that tag, counted in SQL."""
        newest = select(func.max(DecisionRow.id)).group_by(
            DecisionRow.crm, DecisionRow.opportunity_id
        )
        query = (
            select(DecisionRow.crm, DecisionRow.fit, func.count())
            .where(DecisionRow.id.in_(newest))
            .group_by(DecisionRow.crm, DecisionRow.fit)
        )
        with self.session() as session:
            return {(crm, fit): count for crm, fit, count in session.execute(query)}

    def all_decisions(self, crm: str | None = None) -> Iterator[DecisionRow]:
        """Every decision in time order, streamed (for trends over time)."""
        query = select(DecisionRow).order_by(DecisionRow.id)
        if crm:
            query = query.where(DecisionRow.crm == crm)
        with self.session() as session:
            yield from session.scalars(query.execution_options(yield_per=1000))

    def decided_with_key(self, crm: str, opportunity_ids: Sequence[str], key: str) -> set[str]:
        """Which of these opportunities already have a decision recorded under ``key``."""
        if not opportunity_ids:
            return set()
        with self.session() as session:
            return set(
                session.scalars(
                    select(DecisionRow.opportunity_id).where(
                        DecisionRow.crm == crm,
                        DecisionRow.event_key == key,
                        DecisionRow.opportunity_id.in_(list(opportunity_ids)),
                    )
                )
            )

    # -- events ----------------------------------------------------------
    def unseen_events(self, crm: str, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` were not processed before."""
        wanted = set(keys)
        if not wanted:
            return set()
        with self.session() as session:
            seen = session.scalars(
                select(EventRow.key).where(EventRow.crm == crm, EventRow.key.in_(wanted))
            )
            return wanted - set(seen)

    def mark_events(self, crm: str, keys: dict[str, str]) -> None:
        """Record processed event keys (key -> object id); already known keys are kept.

        One insert for the batch; only when another worker recorded one of the keys
        in the meantime does it fall back to key-by-key merging.
        """
        fresh = self.unseen_events(crm, keys)
        if not fresh:
            return
        now = utcnow()
        rows = [EventRow(crm=crm, key=k, object_id=keys[k], processed_at=now) for k in fresh]
        try:
            with self.session.begin() as session:
                session.add_all(rows)
        except IntegrityError:
            with self.session.begin() as session:
                for row in rows:
                    session.merge(
                        EventRow(crm=crm, key=row.key, object_id=row.object_id, processed_at=now)
                    )

    # -- keys ------------------------------------------------------------
    def app_key(self, name: str, make: Callable[[], str]) -> str:
        """The stored key ``name``; the first caller stores ``make()``. Processes racing
        at start-up all end with the one value that won the insert."""
        with self.session() as session:
            row = session.get(AppKeyRow, name)
            if row is not None:
                return row.value
        try:
            with self.session.begin() as session:
                session.add(AppKeyRow(name=name, value=make(), created_at=utcnow()))
        except IntegrityError:
            pass
        with self.session() as session:
            return session.get(AppKeyRow, name).value  # type: ignore[union-attr]

    # -- watermarks ------------------------------------------------------
    def watermark(self, crm: str, name: str) -> str:
        with self.session() as session:
            row = session.get(WatermarkRow, (crm, name))
            return row.value if row else ""

    def set_watermark(self, crm: str, name: str, value: str) -> None:
        with self.session.begin() as session:
            session.merge(WatermarkRow(crm=crm, name=name, value=value, updated_at=utcnow()))


@functools.cache
def _state_upsert(dialect: str) -> Any:
    """The current-state upsert, one statement per dialect, run as an executemany.

    Built once and given its rows as parameters, SQLAlchemy compiles it once and
    batches the rows into multi-row statements itself ("insertmanyvalues"); rows
    put in with ``.values(rows)`` made it compile a new statement of every row's
    every column for each page (about a third of a sweep's time).
    """
    table = StateRow.__table__
    upsert = INSERTS[dialect](table)
    keys = ("crm", "opportunity_id")
    return upsert.on_conflict_do_update(
        index_elements=list(keys),
        set_={c.name: upsert.excluded[c.name] for c in table.columns if c.name not in keys},
    )


def _insert_decisions(session: Any, rows: Sequence[DecisionRow]) -> list[int]:
    """Insert ``rows`` in one statement; their ids, in order.

    The ids are matched back by (crm, opportunity id), so the statement needs no
    ordering guarantee; a page naming one opportunity twice is inserted row by row.
    """
    keys = [(row.crm, row.opportunity_id) for row in rows]
    if len(set(keys)) < len(keys):
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]
    statement = insert(DecisionRow).returning(
        DecisionRow.id, DecisionRow.crm, DecisionRow.opportunity_id
    )
    found = {
        (crm, opp): i for i, crm, opp in session.execute(statement, [_values(r) for r in rows])
    }
    return [found[key] for key in keys]


def _values(row: Any) -> dict[str, Any]:
    """The column values a new, unsaved row was built with (for a bulk insert)."""
    return {k: v for k, v in vars(row).items() if not k.startswith("_")}
