"""The dashboard leaders and managers open in a browser.

Server-rendered HTML with inline SVG charts (no script, nothing loaded from
outside the app). Every view is a URL: filters are query parameters, so a view
can be shared by copying its address.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request

from integration.app import auth, charts
from integration.app import insights_source as source
from integration.app.present import Presenter

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")


@bp.before_request
def _authorize() -> Response | None:
    refused = auth.refusal("page")
    if refused is None and request.method == "POST":
        auth.check_csrf()
    return refused


def _state() -> Any:
    return current_app.extensions["onstrategy"]


def _query() -> source.Query:
    try:
        return source.Query.from_args(request.args)
    except ValueError as exc:
        abort(400, description=str(exc))


def _presenter(query: source.Query) -> Presenter:
    state = _state()
    return Presenter(state.settings, query, state.runtime.today())


@bp.get("")
def overview() -> str:
    """The state of the strategy: headline, trend, groups, patterns, people, lists."""
    query = _query()
    runtime = _state().runtime
    try:
        seen = source.overview(runtime, query)
    except ValueError as exc:
        abort(400, description=str(exc))
    data = seen["report"]
    level = "owner" if query.by == "owner" else "team"
    return render_template(
        "dashboard.html",
        r=data,
        head=seen["head"],
        q=query,
        p=_presenter(query),
        teams=seen["teams"],
        charts=charts,
        red_flag_below=source.red_flag_below(runtime),
        flagged={f["group"] for f in data["red_flags"] if f["level"] == level},
    )


@bp.get("/deals")
def deals() -> str:
    """The deals behind a figure (a team, a rep, on or off strategy), each linked to the CRM."""
    query = _query()
    counts_as = request.args.get("fit", "")
    if counts_as not in ("", "on", "off", "approved"):
        abort(400, description=f"fit must be on, off or approved; got {counts_as!r}")
    rows = source.deals(_state().runtime, query, counts_as)
    return render_template("deals.html", rows=rows, q=query, p=_presenter(query), fit=counts_as)


@bp.get("/managers/<manager>")
def manager(manager: str) -> str:
    """A manager's coaching queue: their reps by name and the deals behind each task."""
    query = _query()
    queue = source.coaching_queue(_state().runtime, manager)
    if queue is None:
        abort(404, description=f"No manager named {manager!r}.")
    return render_template("manager.html", queue=queue, q=query, p=_presenter(query))
