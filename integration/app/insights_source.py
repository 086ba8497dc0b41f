"""Where the dashboard gets its numbers: the one place that talks to the insights.

Every figure on the page comes from :class:`integration.reports.service.Insights`,
the computation behind ``onstrategy report`` and ``GET /api/report``, asked the
same question (an :class:`~integration.reports.service.Ask`), so the three never
disagree. This module only turns the page's query parameters into that question
and picks the deals behind a figure for the drill-down.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from integration.reports.insights import GROUPINGS, STATUSES
from integration.reports.lists import item
from integration.reports.service import Ask, in_view, parse_date

if TYPE_CHECKING:
    from integration.reports.deals import Deal
    from integration.runtime import Runtime


@dataclass(frozen=True)
class Query:
    """What a view asks for; every field is a query parameter, so a view can be shared."""

    status: str = "open"
    start: date | None = None
    end: date | None = None
    team: str = ""
    rep: str = ""
    by: str = "team"

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> Query:
        """Parse query parameters; a bad one raises ValueError naming it."""
        status = args.get("status", "") or "open"
        team = args.get("team", "").strip()
        by = args.get("by", "") or ("owner" if team else "team")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
        if by not in GROUPINGS:
            raise ValueError(f"by must be one of {', '.join(GROUPINGS)}; got {by!r}")
        start, end = parse_date(args.get("from"), "from"), parse_date(args.get("to"), "to")
        if start and end and end < start:
            raise ValueError(f"to ({end}) is before from ({start})")
        return cls(status, start, end, team, args.get("rep", "").strip(), by)

    def ask(self, **changes: Any) -> Ask:
        """The same question as ``GET /api/report`` with these parameters."""
        query = replace(self, **changes)
        return Ask(query.status, query.start, query.end, query.by, team=query.team, rep=query.rep)

    def params(self, **changes: Any) -> dict[str, str]:
        """This query as URL parameters (defaults left out), with some changed."""
        q = replace(self, **changes)
        values = {
            "status": q.status if q.status != "open" else "",
            "from": q.start.isoformat() if q.start else "",
            "to": q.end.isoformat() if q.end else "",
            "team": q.team,
            "rep": q.rep,
            "by": q.by if q.by != ("owner" if q.team else "team") else "",
        }
        return {k: v for k, v in values.items() if v}


def overview(runtime: Runtime, query: Query) -> dict[str, Any]:
    """Everything the overview shows: the report for the query, the open pipeline's and
    the bookings' totals for the headline (the same reports the API gives), the teams."""
    insights = runtime.insights
    data = insights.report(query.ask())
    won = data if query.status == "won" else insights.report(query.ask(status="won"))
    opened = data if query.status == "open" else insights.report(query.ask(status="open"))
    head = {"open": opened["total"], "won": won["total"]}
    return {"report": data, "head": head, "teams": _teams(insights.deals()[0])}


def red_flag_below(runtime: Runtime) -> float:
    """The red-flag line as a fraction (the rules file gives it in percent)."""
    return runtime.rulebook().ruleset.insights.red_flag_below / 100


def deals(runtime: Runtime, query: Query, counts_as: str = "") -> list[dict[str, Any]]:
    """The deals behind a figure: the query's scope (the same rules as the report's
    lines), optionally only those that count as ``on``, ``off`` or ``approved``."""
    insights = runtime.insights
    judged, rulebook = insights.deals()
    ask = query.ask()
    period = insights.params(ask, rulebook).period
    wanted = [
        deal
        for deal in in_view(judged, ask)
        if _in_scope(deal, query.status, period) and (not counts_as or deal.counts_as == counts_as)
    ]
    wanted.sort(key=lambda d: (-d.amount, d.crm, d.opportunity_id))
    return [{**item(d), "close_date": d.close_date, "warned": d.warned} for d in wanted]


def _in_scope(deal: Deal, status: str, period: tuple[str, str]) -> bool:
    """Whether a report of ``status`` over ``period`` counts the deal in its lines."""
    if not deal.is_closed:
        return status in ("open", "all")
    kind = "won" if deal.is_won else "lost"
    return status in (kind, "all") and period[0] <= deal.close_date <= period[1]


def _teams(judged: Iterable[Deal]) -> dict[str, list[str]]:
    teams: dict[str, set[str]] = defaultdict(set)
    for deal in judged:
        teams[deal.team].add(deal.owner)
    return {team: sorted(reps) for team, reps in sorted(teams.items())}


def coaching_queue(runtime: Runtime, manager: str) -> dict[str, Any] | None:
    """A manager's queue (``GET /api/coaching/<manager>``), or None for nobody known."""
    return runtime.insights.manager_view(manager)
