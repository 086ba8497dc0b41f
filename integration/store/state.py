"""Bulk reads of the current state for rules preview: plain tuples, streamed.

A preview reads every opportunity's state once; ORM objects would cost more
than the evaluation itself at 100,000 rows, so these queries return plain
tuples of the chosen columns, in batches, and memory stays flat.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from integration.domain.model import OUTPUT_FIELDS, OpportunityRecord
from integration.store.models import StateRow


class CurrentState:
    def __init__(self, engine: Engine, session: sessionmaker[Session]) -> None:
        self.engine, self.session = engine, session

    def columns(self, names: Sequence[str], batch: int = 5000) -> Iterator[tuple]:
        """Chosen columns of every current state, in key order."""
        query = select(*(getattr(StateRow, n) for n in names)).order_by(
            StateRow.crm, StateRow.opportunity_id
        )
        with self.engine.connect() as connection:
            yield from connection.execution_options(yield_per=batch).execute(query)

    def count(self) -> int:
        with self.session() as session:
            return session.scalar(select(func.count()).select_from(StateRow)) or 0

    def known_accounts(self, crm: str) -> set[str]:
        """Account ids of the opportunities the store knows in one CRM."""
        query = select(StateRow.account_id).where(StateRow.crm == crm).distinct()
        with self.session() as session:
            return {a for a in session.scalars(query) if a}

    def refresh_facts(self, crm: str, records: Sequence[OpportunityRecord]) -> int:
        """Replace the facts and CRM-held values of known opportunities (``preview --fresh``).

        The live decision stays as it is; an opportunity the store does not know
        yet is left out (it has no live decision to compare with).
        """
        changed = 0
        with self.session.begin() as session:
            for record in records:
                held = {name: record.current.get(name) for name in OUTPUT_FIELDS}
                result = session.execute(
                    update(StateRow)
                    .where(StateRow.crm == crm, StateRow.opportunity_id == record.id)
                    .values(facts=json.dumps(record.facts.to_dict()), crm_values=json.dumps(held))
                )
                changed += result.rowcount or 0
        return changed
