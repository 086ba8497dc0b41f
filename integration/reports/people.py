"""Views for people: a manager's coaching queue and a rep's own figures.

"No sales person should have more than 2 initiatives ... at any point in time"
(seed 003): a manager sees, per rep and by name, the few open coaching tasks and
the short queue behind them, each with the deal it is about, most important
first. A rep sees their own share, win rates and warnings next to their team's,
so they can "move their own meter" (seed 004).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from integration.reports.deals import Deal
from integration.reports.insights import Params, build_report
from integration.reports.lists import item
from integration.store.database import Store
from integration.store.models import TaskRow

LIVE = ("open", "queued")


def _matches(who: str, person_id: str, names: Mapping[str, str]) -> bool:
    wanted = who.strip().casefold()
    return wanted in (person_id.casefold(), names.get(person_id, "").casefold())


def manager_view(
    store: Store, deals: Sequence[Deal], names: Mapping[str, str], manager: str
) -> dict[str, Any] | None:
    """Open then queued tasks per rep of one manager (id or name); None if unknown."""
    query = select(TaskRow).where(TaskRow.status.in_(LIVE))
    with store.session() as session:
        tasks = [t for t in session.scalars(query) if _matches(manager, t.assignee_id, names)]
    known = {d.manager_id for d in deals} | {t.assignee_id for t in tasks}
    manager_id = next((m for m in sorted(known) if m and _matches(manager, m, names)), None)
    if manager_id is None:
        return None
    by_key = {(d.crm, d.opportunity_id): d for d in deals}
    reps: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for task in sorted(tasks, key=lambda t: (t.status != "open", -t.score, t.id)):
        deal = by_key.get((task.crm, task.opportunity_id))
        reps[names.get(task.rep_id, task.rep_id)].append(
            {
                "status": task.status,
                "rule": task.rule,
                "subject": task.subject,
                "priority": task.priority,
                "score": task.score,
                "deal": item(deal)
                if deal
                else {"crm": task.crm, "opportunity_id": task.opportunity_id},
            }
        )
    return {
        "manager": names.get(manager_id, manager_id),
        "manager_id": manager_id,
        "reps": [
            {
                "rep": rep,
                "open": sum(t["status"] == "open" for t in tasks),
                "queued": sum(t["status"] == "queued" for t in tasks),
                "tasks": tasks,
            }
            for rep, tasks in sorted(reps.items())
        ],
    }


def rep_view(
    store: Store, deals: Sequence[Deal], params: Params, rep: str
) -> dict[str, Any] | None:
    """A rep's line next to their team's (same scope), and their deals with a warning."""
    from_names = {d.owner_id: d.owner for d in deals}
    mine = [d for d in deals if _matches(rep, d.owner_id, from_names)]
    if not mine:
        return None
    owner, team = mine[0].owner, mine[0].team
    team_report = _team_report(deals, params, team)
    line = next((x for x in team_report["lines"] if x["group"] == owner), None)
    with store.session() as session:
        tasks = session.scalars(
            select(TaskRow).where(TaskRow.rep_id == mine[0].owner_id, TaskRow.status.in_(LIVE))
        ).all()
    warned = sorted((d for d in mine if d.warned and d.is_open), key=lambda d: -d.amount)
    return {
        "owner": owner,
        "team": team,
        "scope": team_report["scope"],
        "rep": line,
        "team_line": team_report["total"],
        "warnings": [item(d) for d in warned],
        "coaching": {
            "open": sum(t.status == "open" for t in tasks),
            "queued": sum(t.status == "queued" for t in tasks),
        },
    }


def _team_report(deals: Sequence[Deal], params: Params, team: str) -> dict[str, Any]:
    """The report over one team's deals: its total is the team's line."""
    return build_report([d for d in deals if d.team == team], params)
