"""``rules preview``: what publishing a draft rulebook would change, before it changes.

Reads only the store: each opportunity's current state (its facts as last read,
the live decision, the values the CRM holds) and the coaching tasks. For every
known opportunity the draft is evaluated on the same facts, and the result is
planned against what the CRM holds, exactly as the pipeline would plan it, so
the preview and the publish that follows agree. Frozen deals are never listed.

One pass, streamed: the summary is counted as rows go by, the changed
opportunities go to a sink (a spool file for the full listing), and only the
50 largest changes are kept in memory, so memory stays flat at any size.
"""

from __future__ import annotations

import heapq
import json
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from integration.domain.model import Decision, Facts
from integration.engine.evaluate import evaluate
from integration.engine.rulebook import Rulebook
from integration.pipeline.planner import plan_fields
from integration.store.database import Store

TOP = 50

#: Columns of the current state the preview reads, in this order.
STATE_COLUMNS = (
    "crm",
    "opportunity_id",
    "facts",
    "crm_values",
    "fit",
    "warnings",
    "amount",
    "owner_id",
    "owner_name",
    "team",
    "name",
)


@dataclass
class Change:
    """One opportunity the publish would re-evaluate, with its written fields that change."""

    crm: str
    opportunity_id: str
    owner: str
    name: str
    amount: float
    fields: dict[str, list[Any]]  # logical field -> [old, new]

    def as_dict(self) -> dict[str, Any]:
        return {
            "crm": self.crm,
            "opportunity_id": self.opportunity_id,
            "owner": self.owner,
            "name": self.name,
            "amount": self.amount,
            "fields": self.fields,
        }


@dataclass
class Share:
    """Deals and amount, and how much of each counts as on strategy, before and after."""

    deals: int = 0
    amount: float = 0.0
    on_before: int = 0
    on_after: int = 0
    amount_before: float = 0.0
    amount_after: float = 0.0

    def add(self, amount: float, before: bool, after: bool) -> None:
        self.deals += 1
        self.amount += amount
        self.on_before += before
        self.on_after += after
        self.amount_before += amount if before else 0.0
        self.amount_after += amount if after else 0.0

    def as_dict(self) -> dict[str, Any]:
        def ratio(part: float, whole: float) -> float:
            return round(part / whole, 4) if whole else 0.0

        return {
            "before": ratio(self.on_before, self.deals),
            "after": ratio(self.on_after, self.deals),
            "before_by_amount": ratio(self.amount_before, self.amount),
            "after_by_amount": ratio(self.amount_after, self.amount),
        }


@dataclass
class RepCoaching:
    """One rep's coaching under the draft: tasks closing and tasks newly wanted."""

    closing_open: int = 0
    closing_queued: int = 0
    claimed: int = 0


@dataclass
class Preview:
    live_version: str
    draft_version: str
    opportunities: int = 0
    frozen: int = 0
    share: Share = field(default_factory=Share)
    by_team: dict[str, Share] = field(default_factory=lambda: defaultdict(Share))
    by_owner: dict[str, Share] = field(default_factory=lambda: defaultdict(Share))
    tags: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    comp_to_true: int = 0
    comp_to_false: int = 0
    warnings_added: Counter = field(default_factory=Counter)
    warnings_removed: Counter = field(default_factory=Counter)
    coaching: dict[str, int] = field(default_factory=dict)
    changed: int = 0  # opportunities whose written fields change
    reevaluate: int = 0  # opportunities the publish re-evaluates (fields or coaching)
    top: list[tuple[float, int, Change]] = field(default_factory=list)
    unknown_targets: list[str] = field(default_factory=list)  # "crm:id" matching no account

    @property
    def largest(self) -> list[Change]:
        return [change for _, _, change in sorted(self.top, key=lambda t: (-t[0], t[1]))]

    def summary(self) -> dict[str, Any]:
        """The contract's JSON, without ``changes`` (streamed after it)."""
        return {
            "live_version": self.live_version,
            "draft_version": self.draft_version,
            "opportunities": self.opportunities,
            "share": self.share.as_dict(),
            "share_by_team": _groups(self.by_team),
            "share_by_owner": _groups(self.by_owner),
            "tag_changes": [
                {"from": old, "to": new, "count": int(n), "amount": round(amount, 2)}
                for (old, new), (n, amount) in sorted(self.tags.items(), key=lambda i: -i[1][0])
            ],
            "comp_changes": {"to_true": self.comp_to_true, "to_false": self.comp_to_false},
            "warnings": {
                "added": dict(sorted(self.warnings_added.items())),
                "removed": dict(sorted(self.warnings_removed.items())),
            },
            "coaching": self.coaching,
            "changed": self.changed,
            "reevaluate": self.reevaluate,
            "frozen": self.frozen,
            "unknown_target_accounts": self.unknown_targets,
        }


def _groups(groups: dict[str, Share]) -> list[dict[str, Any]]:
    return [
        {"group": name, "deals": share.deals, **share.as_dict()}
        for name, share in sorted(groups.items())
    ]


@dataclass
class CoachingState:
    """The coaching tasks the store knows, as the pipeline would see them."""

    live: dict[tuple[str, str], list[tuple[str, str, str]]]  # (crm, opp) -> (rule, status, rep)
    handled: set[tuple[str, str, str]]  # (crm, opportunity, rule) completed/deleted in the CRM
    open_per_rep: dict[tuple[str, str], int]  # (crm, rep) -> open (and starting) tasks
    queued_per_rep: dict[tuple[str, str], int]  # (crm, rep) -> tasks waiting for a slot
    dropped: set[tuple[str, str, str]] = field(default_factory=set)  # beyond the queue bound


def coaching_state(snapshot: tuple[list[tuple], list[tuple], dict, list[tuple]]) -> CoachingState:
    """The store's task snapshot (:meth:`TaskStore.snapshot`) arranged for the preview."""
    live_rows, handled_rows, open_per_rep, dropped = snapshot
    live: dict[tuple[str, str], list[tuple[str, str, str]]] = defaultdict(list)
    queued: Counter = Counter()
    for crm, opp_id, rule, status, rep_id in live_rows:
        live[(crm, opp_id)].append((rule, status, rep_id))
        if status == "queued":
            queued[(crm, rep_id)] += 1
    return CoachingState(dict(live), set(handled_rows), open_per_rep, dict(queued), set(dropped))


class PreviewRun:
    """One pass over the current state, comparing the live rulebook with a draft."""

    def __init__(
        self,
        live: Rulebook,
        draft: Rulebook,
        coaching: CoachingState,
        today: date,
        sink: Callable[[Change], None] | None = None,
    ) -> None:
        self.live, self.draft, self.today = live, draft, today
        self.state = coaching
        self.sink = sink
        self.cap = draft.ruleset.max_open_per_rep
        self.reps: dict[tuple[str, str], RepCoaching] = defaultdict(RepCoaching)
        self.result = Preview(live.version, draft.version)
        self._closing = 0

    def run(self, rows: Iterable[Any], progress: Callable[[int], None] | None = None) -> Preview:
        for count, row in enumerate(rows, 1):
            self.add(row)
            if progress and count % 1000 == 0:
                progress(1000)
        self._finish_coaching()
        return self.result

    def add(self, row: Any) -> None:
        crm, opp_id, facts_json, held_json, fit, warnings, amount = row[:7]
        owner_id, owner_name, team, name = row[7:11]
        raw = Facts.from_dict(json.loads(facts_json))
        facts = self.draft.managers.resolve(self.draft.targets.resolve(raw))
        decision = evaluate(facts, self.draft.ruleset, self.today)
        result = self.result
        result.opportunities += 1
        before = self.live.ruleset.counts_on(fit)
        after = decision.counts_as == "on"
        amount = amount or 0.0
        for share in (
            result.share,
            result.by_team[team or "(no team)"],
            result.by_owner[owner_name or owner_id or "(no owner)"],
        ):
            share.add(amount, before, after)
        if decision.frozen:  # never written, never re-evaluated by a publish
            result.frozen += 1
            return
        changes = plan_fields(decision, json.loads(held_json or "{}"))
        coached = self._coaching(crm, opp_id, decision, facts, bool(changes))
        self._count(changes, warnings, decision, amount)
        if changes or coached:
            change = Change(
                crm,
                opp_id,
                owner_name or owner_id,
                name,
                amount,
                {k: [old, new] for k, (old, new) in changes.items()},
            )
            self._keep(change)

    def _count(
        self, changes: dict[str, tuple[Any, Any]], warnings: str, decision: Decision, amount: float
    ) -> None:
        result = self.result
        if "fit" in changes:
            old, new = changes["fit"]
            entry = result.tags.setdefault((old or "", new), [0, 0.0])
            entry[0] += 1
            entry[1] += amount
        if "comp_eligible" in changes:
            if changes["comp_eligible"][1]:
                result.comp_to_true += 1
            else:
                result.comp_to_false += 1
        was = set(json.loads(warnings or "[]"))
        now = {w.rule for w in decision.warnings}
        result.warnings_added.update(now - was)
        result.warnings_removed.update(was - now)

    def _keep(self, change: Change) -> None:
        result = self.result
        result.reevaluate += 1
        if change.fields:
            result.changed += 1
            item = (abs(change.amount), -result.changed, change)
            if len(result.top) < TOP:
                heapq.heappush(result.top, item)
            else:
                heapq.heappushpop(result.top, item)
        if self.sink:
            self.sink(change)

    def _coaching(
        self, crm: str, opp_id: str, decision: Decision, facts: Facts, reevaluated: bool
    ) -> bool:
        """Count this opportunity's task closes and claims; True when its coaching changes.

        A pair dropped beyond the queue bound is claimed again only when its deal is
        re-evaluated anyway: by itself it is no change (it would wait, or be dropped
        again, until a slot frees).
        """
        wanted = {task.rule for task in decision.coaching}
        live = self.state.live.get((crm, opp_id), [])
        changed = False
        for rule, status, rep_id in live:
            if rule not in wanted and status in ("open", "queued"):  # "starting" finishes first
                rep = self.reps[(crm, rep_id)]
                rep.closing_open += status == "open"
                rep.closing_queued += status == "queued"
                self._closing += 1
                changed = True
        have = {rule for rule, _, _ in live}
        for rule in wanted - have:
            pair = (crm, opp_id, rule)
            if pair in self.state.handled or (pair in self.state.dropped and not reevaluated):
                continue
            self.reps[(crm, facts.owner.id)].claimed += 1
            changed = True
        return changed

    def _finish_coaching(self) -> None:
        """Free slots (the draft's cap minus what stays open) take the waiting tasks;
        the draft's ``queue_per_rep`` keep waiting and the rest are dropped."""
        create = queue = over = dropped = 0
        bound = self.draft.ruleset.queue_per_rep
        reps = set(self.reps) | set(self.state.open_per_rep) | set(self.state.queued_per_rep)
        for key in reps:
            rep = self.reps.get(key) or RepCoaching()
            staying = self.state.open_per_rep.get(key, 0) - rep.closing_open
            waiting = self.state.queued_per_rep.get(key, 0) - rep.closing_queued + rep.claimed
            starting = min(max(0, self.cap - staying), waiting)
            create += starting
            queue += min(waiting - starting, bound)
            dropped += max(0, waiting - starting - bound)
            over += max(0, staying - self.cap)
        self.result.coaching = {
            "create": create,
            "queue": queue,
            "close": self._closing,
            "open_now": sum(self.state.open_per_rep.values()),
            "over_cap": over,
            "dropped": dropped,
            "cap": self.cap,
        }


def run_preview(
    store: Store,
    live: Rulebook,
    draft: Rulebook,
    today: date,
    sink: Callable[[Change], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Preview:
    """Compare ``draft`` with ``live`` over every opportunity the store knows."""
    state = coaching_state(store.tasks.snapshot())
    rows = store.current.columns(STATE_COLUMNS)
    result = PreviewRun(live, draft, state, today, sink).run(rows, progress)
    result.unknown_targets = unknown_target_accounts(store, draft)
    return result


def unknown_target_accounts(store: Store, rulebook: Rulebook) -> list[str]:
    """Target list ids (``crm:id``) that match no account of any opportunity the store knows.

    Usually a typo or an account id from another CRM: such a row never makes any
    deal comp-eligible, so the admin should see it before publishing.
    """
    unknown = []
    for crm, ids in sorted(rulebook.targets.accounts.items()):
        known = store.current.known_accounts(crm)
        if known:  # a CRM with no known opportunity yet says nothing about its ids
            unknown.extend(f"{crm}:{account}" for account in sorted(ids - known))
    return unknown


class ChangeSpool:
    """Every change of a preview, one JSON line each in a temporary file (memory stays flat)."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def __call__(self, change: Change) -> None:
        self.file.write(json.dumps(change.as_dict()) + "\n")

    def __iter__(self) -> Iterator[Change]:
        self.file.flush()
        self.file.seek(0)
        for line in self.file:
            yield Change(**json.loads(line))

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> ChangeSpool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
