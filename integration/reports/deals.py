"""Every opportunity as the insights see it: its latest facts judged by the live rules.

The current-state table holds one row per opportunity with the facts as read and
the decision taken when it was last processed. That decision may come from an
older ruleset; the insights must not show a rule change as a change in what reps
do, so a row decided under another rulebook is judged again from its facts with
the live one. Those judgements are kept per live version (:class:`Judgements`),
so a report reads one narrow query and re-evaluates only what changed since the
last report: its cost follows the number of opportunities, never the length of
the decision history.

Comp figures for frozen deals (closed before ``freeze_closed_before``) use the
flag the CRM holds: the service never writes those deals again.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import astuple, dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import DateTime, bindparam, func, select, text, tuple_

from integration.domain.model import Facts
from integration.engine.evaluate import evaluate
from integration.engine.rulebook import Rulebook
from integration.engine.ruleset import Ruleset
from integration.store.database import Store
from integration.store.judgements import JudgementStore
from integration.store.models import StateRow

NARROW = (
    "crm",
    "opportunity_id",
    "decided_at",
    "ruleset_version",
    "target_list_version",
    "fit",
    "fit_rule",
    "warning",
    "comp_eligible",
    "name",
    "amount",
    "stage",
    "probability",
    "close_date",
    "created_date",
    "is_closed",
    "is_won",
    "owner_id",
    "owner_name",
    "team",
    "industry",
    "manager_id",
)
_SELECT = "SELECT " + ", ".join(NARROW) + " FROM opportunity_state"
_SINCE = text(_SELECT + " WHERE decided_at >= :since").bindparams(
    bindparam("since", type_=DateTime(timezone=True))
)
_STAMP = select(func.count(), func.max(StateRow.decided_at))
FACTS_BATCH = 500
SKEW = timedelta(minutes=5)  # workers' clocks and commit order: re-read a margin
FULL_READ_EVERY = 600.0  # seconds; a full read now and then bounds any drift


@dataclass(slots=True)
class Deal:
    """One opportunity, judged by the live rules (what every figure counts)."""

    crm: str
    opportunity_id: str
    name: str
    amount: float
    stage: str
    probability: int
    close_date: str
    created_date: str
    is_closed: bool
    is_won: bool
    owner_id: str
    owner: str  # the rep's name (their id when the CRM gave no name)
    team: str
    industry: str
    manager_id: str
    fit: str = ""
    fit_rule: str = ""
    counts_as: str = "off"  # on | approved | off
    comp_eligible: bool = False
    warned: bool = False
    products: tuple[str, ...] = ()

    @property
    def is_open(self) -> bool:
        return not self.is_closed


def counts_as(ruleset: Ruleset, fit_rule: str, fit: str) -> str:
    """How a fit counts (``on``, ``approved``, ``off``): the ruleset decides.

    The one place the insights ask; a ruleset that names ``counts_as`` per fit rule
    answers by rule name first, then by tag.
    """
    known = any(rule.name == fit_rule for rule in ruleset.fit)
    return ruleset.counts_as(fit_rule if known else fit)


@dataclass
class _Judged:
    stamp: Any
    fit: str
    fit_rule: str
    comp_eligible: bool
    warned: bool
    products: tuple[str, ...]


@dataclass
class Judgements:
    """Judgements under one live rulebook, and the state rows they were made on.

    One instance lives as long as the process (the CLI, a web worker); a new live
    version starts the judgements afresh. The rows are refreshed by what changed
    since the last read (an index on ``decided_at``), so a report on an unchanged
    store reads two numbers. Thread-safe for the web server's threads.
    """

    key: tuple[str, str] = ("", "")
    entries: dict[tuple[str, str], _Judged] = field(default_factory=dict)
    rows: dict[tuple[str, str], Any] = field(default_factory=dict)
    stamp: tuple[int, Any] | None = None
    deals: list[Deal] | None = None
    full_read_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset_for(self, rulebook: Rulebook, store: Store) -> None:
        """A new live rulebook: start from the judgements the store kept under it."""
        key = (rulebook.ruleset.version, rulebook.targets.version)
        if key != self.key:
            kept = JudgementStore(store.session).load(":".join(key))
            self.key, self.deals = key, None
            self.entries = {k: _Judged(*v) for k, v in kept.items()}


def load_deals(store: Store, rulebook: Rulebook, cache: Judgements | None = None) -> list[Deal]:
    """Every opportunity in the store, judged by ``rulebook`` (reusing ``cache``)."""
    cache = cache or Judgements()
    with cache.lock:
        cache.reset_for(rulebook, store)
        with store.engine.connect() as connection:
            count, newest = connection.execute(_STAMP).one()
            if cache.deals is not None and cache.stamp == (count, newest):
                return cache.deals
            _refresh_rows(connection, cache, count)
        rows = list(cache.rows.values())
        stale = [row for row in rows if _needs_facts(cache, row)]
        _judge_stale(store, rulebook, cache, stale, full=len(stale) > len(rows) // 5)
        memo: dict[tuple[str, str], str] = {}
        entries = cache.entries
        cache.deals = [
            _deal(rulebook.ruleset, memo, entries[(row[0], row[1])], row)
            for row in rows
            if (row[0], row[1]) in entries  # gone between the two reads: left out
        ]
        cache.stamp = (count, newest)
        return cache.deals


def _refresh_rows(connection: Any, cache: Judgements, count: int) -> None:
    """The narrow state rows: only those decided since the last read, unless a full
    read is due (first read, rows deleted, or every few minutes)."""
    since = cache.stamp[1] if cache.stamp else None
    due = time.monotonic() - cache.full_read_at > FULL_READ_EVERY
    if since is not None and not due:
        for row in connection.execute(_SINCE, {"since": since - SKEW}):
            cache.rows[(row[0], row[1])] = row
        if len(cache.rows) == count:
            return
    cache.rows = {(r[0], r[1]): r for r in connection.exec_driver_sql(_SELECT).fetchall()}
    cache.full_read_at = time.monotonic()


def _needs_facts(cache: Judgements, row: Any) -> bool:
    held = cache.entries.get((row[0], row[1]))
    return held is None or held.stamp != str(row[2])


def _judge_stale(
    store: Store, rulebook: Rulebook, cache: Judgements, rows: list[Any], full: bool
) -> None:
    """Judge rows new since the last report; evaluate only those decided by other rules."""
    version, targets = cache.key
    judged = []
    for key, row, facts, held in _with_facts(store, rows, full):
        products = tuple(facts.products)
        if row[3] == version and row[4] == targets:
            fit, rule, comp, warned = row[5], row[6], bool(row[8]), bool(row[7])
        else:
            resolved = rulebook.managers.resolve(rulebook.targets.resolve(facts))
            decision = evaluate(resolved, rulebook.ruleset)
            fit, rule, comp = decision.fit, decision.fit_rule, decision.comp_eligible
            warned = bool(decision.warnings)
        if _frozen(rulebook.ruleset, row):
            comp = bool(held.get("comp_eligible"))
        cache.entries[key] = _Judged(str(row[2]), fit, rule, comp, warned, products)
        judged.append((key, astuple(cache.entries[key])))
    if judged:
        JudgementStore(store.session).save(":".join(cache.key), judged)


def _frozen(ruleset: Ruleset, row: Any) -> bool:
    """Closed before the live freeze date: the CRM's own flag counts."""
    freeze = ruleset.freeze_closed_before
    return bool(freeze and row[15] and row[13] and row[13][:10] < freeze.isoformat())


def _with_facts(
    store: Store, rows: list[Any], full: bool
) -> Iterator[tuple[tuple[str, str], Any, Facts, dict[str, Any]]]:
    """Each row with its facts and CRM-held values: one scan when most are needed
    (the first report of a process), else read in batches by key."""
    if full:
        wanted = {(row[0], row[1]): row for row in rows}
        query = select(StateRow.crm, StateRow.opportunity_id, StateRow.facts, StateRow.crm_values)
        with store.engine.connect() as connection:
            for crm, opp, facts, held in connection.execute(query):
                row = wanted.get((crm, opp))
                if row is not None:
                    yield (crm, opp), row, _facts(facts, row), json.loads(held or "{}")
        return
    for start in range(0, len(rows), FACTS_BATCH):
        batch = rows[start : start + FACTS_BATCH]
        keys = [(row[0], row[1]) for row in batch]
        query = select(
            StateRow.crm, StateRow.opportunity_id, StateRow.facts, StateRow.crm_values
        ).where(tuple_(StateRow.crm, StateRow.opportunity_id).in_(keys))
        with store.engine.connect() as connection:
            found = {(c, o): (f, v) for c, o, f, v in connection.execute(query)}
        for key, row in zip(keys, batch, strict=True):
            facts, held = found.get(key, ("{}", "{}"))
            yield key, row, _facts(facts, row), json.loads(held or "{}")


def _facts(text: str, row: Any) -> Facts:
    data = json.loads(text or "{}")
    if not data.get("opportunity"):
        data = {"crm": row[0], "opportunity": {"id": row[1]}}
    return Facts.from_dict(data)


def _deal(ruleset: Ruleset, memo: dict[tuple[str, str], str], judged: _Judged, row: Any) -> Deal:
    kind = memo.get((judged.fit_rule, judged.fit))
    if kind is None:
        kind = memo[(judged.fit_rule, judged.fit)] = counts_as(ruleset, judged.fit_rule, judged.fit)
    return Deal(
        crm=row[0],
        opportunity_id=row[1],
        name=row[9] or "",
        amount=float(row[10] or 0.0),
        stage=row[11] or "",
        probability=int(row[12] or 0),
        close_date=(row[13] or "")[:10],
        created_date=(row[14] or "")[:10],
        is_closed=bool(row[15]),
        is_won=bool(row[16]),
        owner_id=row[17] or "",
        owner=row[18] or row[17] or "(no owner)",
        team=row[19] or "(no team)",
        industry=row[20] or "(no industry)",
        manager_id=row[21] or "",
        fit=judged.fit,
        fit_rule=judged.fit_rule,
        counts_as=kind,
        comp_eligible=judged.comp_eligible,
        warned=judged.warned,
        products=judged.products,
    )


def owner_names(deals: Iterable[Deal], directory: Iterable[dict[str, Any]] = ()) -> dict[str, str]:
    """Person id -> name, from the deals' owners and any directory of people (managers)."""
    names = {d.owner_id: d.owner for d in deals if d.owner_id and d.owner != d.owner_id}
    for person in directory:
        for key in ("id", "email"):  # the managers file may name people by email
            if person.get(key) and person.get("name"):
                names.setdefault(person[key], person["name"])
    return names
