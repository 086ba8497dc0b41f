"""The insights' judgements kept in the store, per live rulebook (see ``JudgementRow``).

Written in batches with an upsert, so two processes judging the same opportunity
at once both succeed (the last one wins; both wrote the same judgement).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from integration.store.dialect import insert_for
from integration.store.models import JudgementRow

BATCH = 5000
COLUMNS = ("stamp", "fit", "fit_rule", "comp_eligible", "warned", "products")
Judged = tuple[
    str, str, str, bool, bool, tuple[str, ...]
]  # stamp, fit, rule, comp, warned, products


class JudgementStore:
    def __init__(self, session: sessionmaker[Session]) -> None:
        self.session = session

    def load(self, rulebook: str) -> dict[tuple[str, str], Judged]:
        """Every judgement kept under this rulebook."""
        query = select(
            JudgementRow.crm,
            JudgementRow.opportunity_id,
            *(getattr(JudgementRow, c) for c in COLUMNS),
        ).where(JudgementRow.rulebook == rulebook)
        with self.session() as session:
            return {
                (crm, opp): (
                    stamp,
                    fit,
                    rule,
                    bool(comp),
                    bool(warned),
                    tuple(json.loads(products)),
                )
                for crm, opp, stamp, fit, rule, comp, warned, products in session.execute(query)
            }

    def save(self, rulebook: str, judged: Iterable[tuple[tuple[str, str], Judged]]) -> None:
        """Keep these judgements (replacing any older one of the same opportunity)."""
        values = [_values(rulebook, key, item) for key, item in judged]
        if not values:
            return
        with self.session.begin() as session:
            upsert = insert_for(session, JudgementRow)
            statement = upsert.on_conflict_do_update(
                index_elements=["crm", "opportunity_id"],
                set_={name: upsert.excluded[name] for name in ("rulebook", *COLUMNS)},
            )
            for start in range(0, len(values), BATCH):
                session.execute(statement, values[start : start + BATCH])


def _values(rulebook: str, key: tuple[str, str], item: Judged) -> dict[str, Any]:
    stamp, fit, rule, comp, warned, products = item
    return {
        "crm": key[0],
        "opportunity_id": key[1],
        "rulebook": rulebook,
        "stamp": stamp,
        "fit": fit[:255],
        "fit_rule": rule[:200],
        "comp_eligible": comp,
        "warned": warned,
        "products": json.dumps(list(products)),
    }
