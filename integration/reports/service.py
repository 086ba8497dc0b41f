"""The insights as a service: what the CLI, the API and the dashboard all call.

One :class:`Insights` per process (the runtime holds it) keeps the judgements of
the live rulebook between reports, so the second report costs one narrow query
and the arithmetic. Everything shown to leaders, managers and reps comes from
:meth:`Insights.report`, :meth:`Insights.manager_view` and :meth:`Insights.rep_view`,
so the three surfaces can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date
from itertools import pairwise
from typing import Any

from integration.engine.rulebook import Rulebook
from integration.reports.deals import Deal, Judgements, load_deals, owner_names
from integration.reports.insights import Params, build_report, week_of
from integration.reports.people import manager_view, rep_view
from integration.store.database import Store


@dataclass(frozen=True)
class Ask:
    """A report request as a user gives it (CLI options, API query parameters)."""

    status: str = "open"
    start: date | None = None
    end: date | None = None
    by: str = "team"
    baseline_from: date | None = None
    baseline_to: date | None = None
    team: str = ""  # only this team's deals (the dashboard's filter); "" for everyone
    rep: str = ""  # only this rep's deals, by name or id

    @classmethod
    def from_args(cls, args: Any) -> Ask:
        """From query parameters (``from``, ``to``, ``baseline_from`` ...); a bad value
        raises ValueError naming it."""
        return cls(
            status=args.get("status") or "open",
            start=parse_date(args.get("from"), "from"),
            end=parse_date(args.get("to"), "to"),
            by=args.get("by") or "team",
            baseline_from=parse_date(args.get("baseline_from"), "baseline_from"),
            baseline_to=parse_date(args.get("baseline_to"), "baseline_to"),
            team=(args.get("team") or "").strip(),
            rep=(args.get("rep") or "").strip(),
        )


def parse_date(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{name} must be a date like 2026-10-01; got {raw!r}") from None


def in_view(deals: list[Deal], ask: Ask) -> list[Deal]:
    """The deals of the asked team and rep (all of them when none is asked)."""
    if not ask.team and not ask.rep:
        return deals
    rep = ask.rep.casefold()
    return [
        d
        for d in deals
        if (not ask.team or d.team == ask.team)
        and (not rep or rep in (d.owner.casefold(), d.owner_id.casefold()))
    ]


CHANGES_READ = 10_000  # publications read for the weeks the live rules changed
REPORTS_KEPT = 32  # distinct questions whose answer is kept while the store is unchanged


class Insights:
    """Reports, a manager's coaching view and a rep's own view, over the current state."""

    def __init__(
        self,
        store: Store,
        rulebook: Callable[[], Rulebook],
        today: Callable[[], date],
        directory: Callable[[], Iterable[dict[str, Any]]] = lambda: (),
    ) -> None:
        self.store, self.rulebook, self.today, self.directory = store, rulebook, today, directory
        self.judgements = Judgements()
        self._changes: tuple[tuple[int, str], frozenset[str]] = ((-1, ""), frozenset())
        self._reports: dict[tuple, dict[str, Any]] = {}

    def deals(self) -> tuple[list[Deal], Rulebook]:
        rulebook = self.rulebook()
        return load_deals(self.store, rulebook, self.judgements), rulebook

    def params(self, ask: Ask, rulebook: Rulebook) -> Params:
        settings = rulebook.ruleset.insights
        return Params(
            today=self.today(),
            status=ask.status,
            start=ask.start,
            end=ask.end,
            by=ask.by,
            baseline_from=ask.baseline_from or settings.baseline_from,
            baseline_to=ask.baseline_to or settings.baseline_to,
            red_flag_below=settings.red_flag_below,
            min_deals=settings.min_deals,
            live_version=rulebook.version,
            changed_weeks=self.changed_weeks(rulebook.version),
        )

    def report(self, ask: Ask) -> dict[str, Any]:
        """The whole report (``onstrategy report --format json``, ``GET /api/report``).

        Kept while nothing it is made of changes (the state rows, the live rules, the
        question, the coaching tasks, the day), so a dashboard polling an unchanged
        store costs two small queries.
        """
        deals, rulebook = self.deals()
        params = self.params(ask, rulebook)
        tasks = self.store.tasks.summary()
        key = (self.judgements.stamp, self.judgements.key, params, ask, tuple(tasks))
        built = self._reports.get(key)
        if built is None:
            names = owner_names(deals, self.directory())
            built = build_report(in_view(deals, ask), params, tasks, names)
            if len(self._reports) >= REPORTS_KEPT:
                self._reports.clear()
            self._reports[key] = built
        return dict(built)

    def clear_reports(self) -> None:
        """Forget kept answers (the next report is computed again from the judgements)."""
        self._reports.clear()

    def manager_view(self, manager: str) -> dict[str, Any] | None:
        """A manager's open and queued coaching tasks per rep, most important first."""
        deals, _ = self.deals()
        return manager_view(self.store, deals, owner_names(deals, self.directory()), manager)

    def rep_view(self, rep: str, ask: Ask | None = None) -> dict[str, Any] | None:
        """A rep's share, win rates and warnings next to their team's."""
        deals, rulebook = self.deals()
        params = replace(self.params(ask or Ask(), rulebook), by="owner")
        return rep_view(self.store, deals, params, rep)

    def changed_weeks(self, live_version: str) -> frozenset[str]:
        """ISO weeks in which the live ruleset changed (a publish or a rollback after the
        first publication). Read once per publication: only a new one adds a week."""
        live = self.store.versions.live_version()
        key = (live[0] if live else 0, live_version)
        if self._changes[0] == key:
            return self._changes[1]
        published = sorted(self.store.versions.history(limit=CHANGES_READ), key=lambda p: p.id)
        weeks = frozenset(
            week_of(later.published_at.date().isoformat())
            for earlier, later in pairwise(published)
            if later.version != earlier.version
        )
        self._changes = (key, weeks)
        return weeks
