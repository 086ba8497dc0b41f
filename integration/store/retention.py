"""History retention: events, decisions and writes older than a cut-off are deleted.

They grow with every webhook and sweep, and reports and ``/metrics`` slow down
with them. The current state (``opportunity_state``), the coaching tasks and the
rule versions are never pruned, and each opportunity keeps its newest decision
so ``explain`` always has an answer.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select

from integration.store.database import Store
from integration.store.models import DecisionRow, EventRow, WriteRow


def prune(store: Store, before: datetime) -> dict[str, int]:
    """Delete history older than ``before``; the counts of rows removed."""
    newest = select(func.max(DecisionRow.id)).group_by(DecisionRow.crm, DecisionRow.opportunity_id)
    old = select(DecisionRow.id).where(
        DecisionRow.decided_at < before, DecisionRow.id.not_in(newest)
    )
    with store.session.begin() as session:
        writes = session.execute(
            delete(WriteRow).where(
                (WriteRow.decision_id.in_(old))
                | (WriteRow.at < before) & WriteRow.decision_id.is_(None)
            )
        ).rowcount
        decisions = session.execute(
            delete(DecisionRow).where(
                DecisionRow.decided_at < before, DecisionRow.id.not_in(newest)
            )
        ).rowcount
        events = session.execute(delete(EventRow).where(EventRow.processed_at < before)).rowcount
    return {"decisions": decisions or 0, "writes": writes or 0, "events": events or 0}
